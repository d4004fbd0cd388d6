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
/// contiguous 3-D inputs), each sum starts from the bias and accumulates the products onto it.
/// `rows` is batch × tokens: one GEMM for the whole batch on DinoKit's own kernels (`gemm`), which
/// packs the weight once per call — for weights that change every step (training) or are used
/// once; a model that reuses its weights packs them at load (`PackedLinearWeights`).
public func linearForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                          weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                          rows: Int, inFeatures: Int, outFeatures: Int, parallelism: Parallelism) {
    guard rows > 0, outFeatures > 0 else { return }
    gemm(transB: true, m: rows, n: outFeatures, k: inFeatures, a: inp, lda: inFeatures, b: weight, ldb: inFeatures,
         c: out, ldc: outFeatures, bias: bias, parallelism: parallelism)
}

/// How many row blocks to split an OpenBLAS GEMM into (for callers that still run `sgemm` inside
/// `parallelFor`). DinoKit runs OpenBLAS single-threaded and parallelises GEMMs itself by rows:
/// OpenBLAS's own pool spins (sched_yield) after each call and would steal the cores from DinoKit's loops in between, and one owner of all threads cannot
/// oversubscribe. Blocks stay at least 32 rows so each call keeps BLAS's packing efficient.
public func linearRowBlocks(rows: Int, inFeatures: Int, outFeatures: Int, parallelism: Parallelism) -> Int {
    let work = rows * inFeatures * outFeatures
    guard work >= 1 << 18 else { return 1 }
    return Swift.max(1, Swift.min(parallelism.threads, rows / 32))
}
