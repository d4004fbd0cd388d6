/// `nn.LayerNorm(cols, eps)` over each row of `inp` (rows × cols), biased variance:
/// out = (x − mean) / sqrt(var + eps) · weight + bias.
///
/// Mean and variance are accumulated in Double, two passes, so they are the exact row statistics
/// rounded once; PyTorch's float Welford lands within an ulp or two of them. `mean` and `rstd`
/// (length `rows`, optional) keep the statistics a backward pass needs.
public func layerNormForward(out: UnsafeMutablePointer<Float>,
                             mean: UnsafeMutablePointer<Float>?, rstd: UnsafeMutablePointer<Float>?,
                             inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                             rows: Int, cols: Int, eps: Float = 1e-6, parallelism: Parallelism = .serial) {
    guard rows > 0, cols > 0 else { return }
    // Per-row work is small: split rows into a few large ranges, not one task per row.
    let p = rows * cols < 1 << 16 ? Parallelism.serial : parallelism
    parallelFor(rows, p) { range in
        for r in range {
            let x = inp + r * cols, y = out + r * cols
            var sum = 0.0
            for i in 0..<cols { sum += Double(x[i]) }
            let m = sum / Double(cols)
            var sq = 0.0
            for i in 0..<cols {
                let d = Double(x[i]) - m
                sq += d * d
            }
            let variance = sq / Double(cols)
            let s = 1 / (variance + Double(eps)).squareRoot()
            let mf = Float(m), sf = Float(s)
            for i in 0..<cols { y[i] = (x[i] - mf) * sf * weight[i] + bias[i] }
            mean?[r] = mf
            rstd?[r] = sf
        }
    }
}
