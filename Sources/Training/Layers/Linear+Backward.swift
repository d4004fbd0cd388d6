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
    let work = rows * inFeatures * outFeatures
    if let dinp {
        // Row blocks: each owns its rows of dinp.
        let p = pieces(rows, work: work, minimum: 32, parallelism)
        parallelForDynamic(rows, grain: p.threads > 1 ? Swift.max(32, rows / (4 * p.threads)) : rows, p) { r in
            sgemm(m: r.count, n: inFeatures, k: outFeatures, a: dout + r.lowerBound * outFeatures, lda: outFeatures,
                  b: weight, ldb: inFeatures, beta: accumulateInput ? 1 : 0,
                  c: dinp + r.lowerBound * inFeatures, ldc: inFeatures)
        }
    }
    // Output-feature blocks: each owns its rows of dweight and entries of dbias, so the sum over
    // the batch needs no reduction between threads.
    let p = pieces(outFeatures, work: work, minimum: 8, parallelism)
    parallelForDynamic(outFeatures, grain: p.threads > 1 ? Swift.max(8, outFeatures / (4 * p.threads)) : outFeatures, p) { o in
        sgemm(transA: true, m: o.count, n: inFeatures, k: rows, a: dout + o.lowerBound, lda: outFeatures,
              b: inp, ldb: inFeatures, beta: 1, c: dweight + o.lowerBound * inFeatures, ldc: inFeatures)
        if let dbias {
            for r in 0..<rows {
                let g = dout + r * outFeatures
                for j in o { dbias[j] += g[j] }
            }
        }
    }
}
