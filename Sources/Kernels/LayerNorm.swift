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

// The backward, next to its forward as every layer's pair is: the training forward is
// `layerNormForward` with `mean` and `rstd` kept; the backward reads the input again and rebuilds
// x̂ = (x − mean)·rstd.

/// Backward of `layerNormForward` (PyTorch's `native_layer_norm_backward`):
/// - `dinp` (rows, cols) += rstd · (w⊙dout − mean(w⊙dout) − x̂ · mean(w⊙dout⊙x̂)) — accumulated, as
///   the residual stream's gradient gathers every branch;
/// - `dweight` += Σ_rows dout⊙x̂, `dbias` += Σ_rows dout.
/// The row means are taken in Double.
public func layerNormBackward(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>,
                              dbias: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                              mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                              rows: Int, cols: Int, parallelism: Parallelism) {
    guard rows > 0, cols > 0 else { return }
    let work = rows * cols * 4
    parallelFor(rows, pieces(rows, work: work, minimum: 16, parallelism)) { range in
        for r in range {
            let x = inp + r * cols, g = dout + r * cols, dx = dinp + r * cols
            let m = mean[r], s = rstd[r]
            var sumG = 0.0, sumGX = 0.0
            for i in 0..<cols {
                let xh = (x[i] - m) * s
                let wg = weight[i] * g[i]
                sumG += Double(wg)
                sumGX += Double(wg * xh)
            }
            let meanG = Float(sumG / Double(cols)), meanGX = Float(sumGX / Double(cols))
            for i in 0..<cols {
                let xh = (x[i] - m) * s
                dx[i] += s * (weight[i] * g[i] - meanG - xh * meanGX)
            }
        }
    }
    // Column blocks for the parameter sums: each thread owns its columns.
    parallelFor(cols, pieces(cols, work: work, minimum: 8, parallelism)) { range in
        for r in 0..<rows {
            let x = inp + r * cols, g = dout + r * cols
            let m = mean[r], s = rstd[r]
            for i in range {
                dweight[i] += g[i] * ((x[i] - m) * s)
                dbias[i] += g[i]
            }
        }
    }
}
