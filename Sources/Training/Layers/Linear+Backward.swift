import Kernels

// nn.Linear, y = x Wᵀ + b with W stored (out, in). The training forward is Kernels'
// `linearForward` (addmm order: bias first, GEMM accumulated onto it); its input is kept by the
// caller, which is all the backward needs.

/// Backward of `linearForward` (PyTorch's `AddmmBackward`):
/// - `dinp` (rows, in) = dout · W — overwritten, or added to with `accumulateInput`; nil skips it;
/// - `dweight` (out, in) += doutᵀ · inp;
/// - `dbias` (out) += Σ_rows dout.
/// Parameter gradients always accumulate, so a layer applied to several inputs (a head over
/// local and global crops, a backbone over both crop sizes) sums its contributions.
public func linearBackward(dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>,
                           dbias: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                           weight: UnsafePointer<Float>, rows: Int, inFeatures: Int, outFeatures: Int,
                           accumulateInput: Bool = false, parallelism: Parallelism) {
    guard rows > 0, inFeatures > 0, outFeatures > 0 else { return }
    // Both products run on DinoKit's GEMM, threads splitting rows of the result (dX's rows,
    // dW's output features), so neither needs a reduction between threads.
    if let dinp {
        gemm(m: rows, n: inFeatures, k: outFeatures, a: dout, lda: outFeatures, b: weight, ldb: inFeatures,
             accumulate: accumulateInput, c: dinp, ldc: inFeatures, parallelism: parallelism)
    }
    gemm(transA: true, m: outFeatures, n: inFeatures, k: rows, a: dout, lda: outFeatures, b: inp, ldb: inFeatures,
         accumulate: true, c: dweight, ldc: inFeatures, parallelism: parallelism)
    if let dbias {
        // Column sums: each piece owns a range of features and walks the rows in order.
        let p = pieces(outFeatures, work: rows * outFeatures, minimum: 64, parallelism)
        parallelFor(outFeatures, p) { o in
            for r in 0..<rows {
                let g = dout + r * outFeatures
                for j in o { dbias[j] += g[j] }
            }
        }
    }
}
