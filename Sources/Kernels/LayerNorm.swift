import CKernels

/// `nn.LayerNorm(cols, eps)` over each row of `inp` (rows × cols), biased variance:
/// out = (x − mean) / sqrt(var + eps) · weight + bias.
///
/// The row statistics come out as the correctly rounded mean and variance to within an ulp (the
/// SIMD paths sum shifted values and finish in Double, the scalar path sums in Double); PyTorch's
/// float Welford lands within an ulp or two of them. `mean` and `rstd` (length `rows`, optional)
/// keep the statistics a backward pass needs.
public func layerNormForward(out: UnsafeMutablePointer<Float>,
                             mean: UnsafeMutablePointer<Float>?, rstd: UnsafeMutablePointer<Float>?,
                             inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                             rows: Int, cols: Int, eps: Float = 1e-6, parallelism: Parallelism = .serial) {
    guard rows > 0, cols > 0 else { return }
    // Per-row work is small: split rows into a few large ranges, not one task per row.
    let p = rows * cols < 1 << 16 ? Parallelism.serial : parallelism
    parallelFor(rows, p) { range in
        let r0 = range.lowerBound
        dk_layernorm(Int32(range.count), Int32(cols), inp + r0 * cols, cols, out + r0 * cols, cols, weight, bias, eps,
                     mean.map { $0 + r0 }, rstd.map { $0 + r0 })
    }
}
