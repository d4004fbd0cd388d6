import CKernels

/// Row-major single-precision GEMM on DinoKit's own micro-kernels (CKernels' `dk_sgemm`):
/// C = alpha · op(A) · op(B) (+ `bias` per column), or C += alpha · op(A) · op(B) with
/// `accumulate`. op(A) is m × k (`transA`: A is stored k × m), op(B) is k × n (`transB`: B is
/// stored n × k, as `nn.Linear` weights are); leading dimensions are row strides in elements, so
/// strided sub-matrices (one head's columns of a QKV row) are passed without copying.
///
/// Threads come from `parallelism` (DinoKit's pool; inline inside another parallel loop). The
/// result does not depend on the thread count, and it does not depend on which kernel a BLAS
/// library would pick for this CPU: training's forward and backward products all run here.
@inline(__always)
public func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
                 a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                 accumulate: Bool = false, c: UnsafeMutablePointer<Float>, ldc: Int,
                 bias: UnsafePointer<Float>? = nil, parallelism: Parallelism = .serial) {
    guard m > 0, n > 0 else { return }
    precondition(bias == nil || !accumulate, "gemm: a bias only starts a fresh C")
    dk_sgemm(transA ? 1 : 0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha, a, lda, b, ldb,
             accumulate ? 1 : 0, c, ldc, bias, Int32(parallelism.threads))
}
