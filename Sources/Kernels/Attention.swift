/// Multi-head self-attention core of DINOv2's `Attention.forward` (no mask, no dropout):
/// for each batch item b and head h, A = softmax(Q Kᵀ / √headDim), O = A V, with heads
/// concatenated back in head order.
///
/// `qkv` is the output of the qkv Linear, (batch·tokens, 3·dim) with dim = heads·headDim: within a
/// row, Q occupies columns [0, dim), K [dim, 2·dim), V [2·dim, 3·dim), and head h owns columns
/// [h·headDim, (h+1)·headDim) of each — the `reshape(B, N, 3, H, Dh)` of the PyTorch code. The
/// GEMMs read those strided sub-matrices in place; `out` is (batch·tokens, dim).
///
/// `probs` receives the attention matrices: either all of them, (batch, heads, tokens, tokens),
/// which a backward pass needs (`AttentionProbabilities.keep`), or one tokens×tokens scratch per
/// worker thread when only the output matters (`.scratch`).
public enum AttentionProbabilities {
    /// Room for batch · heads · tokens² floats; filled with every head's probabilities.
    case keep(UnsafeMutablePointer<Float>)
    /// Room for `attentionScratchCount(tokens:parallelism:)` floats; overwritten.
    case scratch(UnsafeMutablePointer<Float>)
}

/// Floats of scratch `attentionForward` needs with `.scratch`.
public func attentionScratchCount(batch: Int, heads: Int, tokens: Int, parallelism: Parallelism) -> Int {
    Swift.max(1, Swift.min(batch * heads, parallelism.threads)) * tokens * tokens
}

public func attentionForward(out: UnsafeMutablePointer<Float>, probs: AttentionProbabilities,
                             qkv: UnsafePointer<Float>, batch: Int, tokens: Int, heads: Int, headDim: Int,
                             parallelism: Parallelism) {
    let dim = heads * headDim, n = tokens
    guard batch > 0, n > 0, heads > 0 else { return }
    // 1/√headDim is a power of two for every released width (64 → 1/8), so folding it into the
    // GEMM's alpha equals scaling q first (the older official code) or SDPA's internal scaling.
    let scale = Float(1 / Double(headDim).squareRoot())
    parallelForWorkers(batch * heads, parallelism) { range, worker in
        for item in range {
            let b = item / heads, h = item % heads
            let s: UnsafeMutablePointer<Float>
            switch probs {
            case .keep(let p): s = p + item * n * n
            case .scratch(let p): s = p + worker * n * n
            }
            let rowBase = qkv + b * n * 3 * dim
            let q = rowBase + h * headDim, k = rowBase + dim + h * headDim, v = rowBase + 2 * dim + h * headDim
            sgemm(transB: true, m: n, n: n, k: headDim, alpha: scale, a: q, lda: 3 * dim, b: k, ldb: 3 * dim,
                  c: s, ldc: n)
            softmaxRowsInPlace(s, rows: n, cols: n)
            sgemm(m: n, n: headDim, k: n, a: s, lda: n, b: v, ldb: 3 * dim,
                  c: out + b * n * dim + h * headDim, ldc: dim)
        }
    }
}
