import COpenBLAS

/// Row-major single-precision GEMM through OpenBLAS: C = alpha · op(A) · op(B) + beta · C, with
/// op(A) m×k, op(B) k×n, C m×n. Leading dimensions are row strides in elements, so strided
/// sub-matrices (one head's columns of a QKV row) are passed without copying.
@inline(__always)
public func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                  alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                  b: UnsafePointer<Float>, ldb: Int,
                  beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    guard m > 0, n > 0 else { return }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// `nn.Linear`: out[r, o] = Σ_i inp[r, i] · weight[o, i] + bias[o], weight stored (out, in) as
/// PyTorch stores it. Like `torch.addmm(bias, x, W.t())` (what `F.linear` runs for 2-D and
/// contiguous 3-D inputs), the bias is put in the output first and the GEMM accumulates onto it.
/// `rows` is batch × tokens: one GEMM for the whole batch. BLAS uses `parallelism.threads`.
public func linearForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                          weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                          rows: Int, inFeatures: Int, outFeatures: Int, parallelism: Parallelism) {
    guard rows > 0, outFeatures > 0 else { return }
    if let bias {
        for r in 0..<rows { (out + r * outFeatures).update(from: bias, count: outFeatures) }
    }
    BLASThreads.set(parallelism.threads)
    sgemm(transB: true, m: rows, n: outFeatures, k: inFeatures, a: inp, lda: inFeatures,
          b: weight, ldb: inFeatures, beta: bias == nil ? 0 : 1, c: out, ldc: outFeatures)
}
