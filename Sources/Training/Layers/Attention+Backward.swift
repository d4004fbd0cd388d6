import Kernels

// Multi-head self-attention core. The training forward is Kernels' `attentionForward` with
// `.keep(probs)`: every head's softmax(Q Kᵀ/√Dh) is kept, (batch, heads, tokens, tokens), with the
// qkv Linear's output, (batch·tokens, 3·D).

/// Floats of scratch `attentionBackward` needs: one tokens × tokens matrix per worker.
public func attentionBackwardScratchCount(batch: Int, heads: Int, tokens: Int, parallelism: Parallelism) -> Int {
    attentionScratchCount(batch: batch, heads: heads, tokens: tokens, parallelism: parallelism)
}

/// Backward of `attentionForward` (SDPA's math backward), per batch item and head, with
/// S = scale·Q Kᵀ, P = softmax(S), O = P V:
///   dV = Pᵀ dO,  dP = dO Vᵀ,  dS = P ⊙ (dP − rowsum(P ⊙ dP)),  dQ = scale·dS K,  dK = scale·dSᵀ Q.
/// `dqkv` (batch·tokens, 3·D) is overwritten in the qkv layout (Q | K | V, heads contiguous);
/// `dout` is (batch·tokens, D), heads concatenated.
public func attentionBackward(dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, qkv: UnsafePointer<Float>,
                              probs: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>,
                              batch: Int, tokens: Int, heads: Int, headDim: Int, parallelism: Parallelism) {
    let dim = heads * headDim, n = tokens, ld = 3 * dim
    guard batch > 0, n > 0, heads > 0 else { return }
    let scale = Float(1 / Double(headDim).squareRoot())
    parallelForWorkers(batch * heads, parallelism) { range, worker in
        let ds = scratch + worker * n * n
        for item in range {
            let b = item / heads, h = item % heads
            let p = probs + item * n * n
            let base = b * n * ld + h * headDim
            let q = qkv + base, k = qkv + base + dim, v = qkv + base + 2 * dim
            let dq = dqkv + base, dk = dqkv + base + dim, dv = dqkv + base + 2 * dim
            let dO = dout + b * n * dim + h * headDim
            gemm(transA: true, m: n, n: headDim, k: n, a: p, lda: n, b: dO, ldb: dim, c: dv, ldc: ld)
            gemm(transB: true, m: n, n: n, k: headDim, a: dO, lda: dim, b: v, ldb: ld, c: ds, ldc: n)
            for i in 0..<n {
                let pr = p + i * n, dr = ds + i * n
                var dot: Float = 0
                for j in 0..<n { dot += pr[j] * dr[j] }
                for j in 0..<n { dr[j] = pr[j] * (dr[j] - dot) }
            }
            gemm(m: n, n: headDim, k: n, alpha: scale, a: ds, lda: n, b: k, ldb: ld, c: dq, ldc: ld)
            gemm(transA: true, m: n, n: headDim, k: n, alpha: scale, a: ds, lda: n, b: q, ldb: ld, c: dk, ldc: ld)
        }
    }
}
