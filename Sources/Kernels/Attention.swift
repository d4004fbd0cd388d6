import CKernels

/// Multi-head self-attention core of DINOv2's `Attention.forward` (no mask, no dropout):
/// for each batch item b and head h, A = softmax(Q Kᵀ / √headDim), O = A V, with heads
/// concatenated back in head order.
///
/// `qkv` is the output of the qkv Linear, (batch·tokens, 3·dim) with dim = heads·headDim: within a
/// row, Q occupies columns [0, dim), K [dim, 2·dim), V [2·dim, 3·dim), and head h owns columns
/// [h·headDim, (h+1)·headDim) of each — the `reshape(B, N, 3, H, Dh)` of the PyTorch code. `out`
/// is (batch·tokens, dim).
///
/// The work is fused per head (CKernels' `dk_attention_head`): K and V are packed once, then 64
/// queries at a time go through scores, softmax and P V, so only a 64 × tokens block of scores is
/// live. `probs` says whether all the probabilities are also kept, (batch, heads, tokens, tokens),
/// which a backward pass needs (`AttentionProbabilities.keep`), or only scratch is used (`.scratch`).
public enum AttentionProbabilities {
    /// Room for batch · heads · tokens² floats; filled with every head's probabilities.
    case keep(UnsafeMutablePointer<Float>)
    /// Room for `attentionScratchCount(batch:heads:tokens:parallelism:)` floats; overwritten.
    case scratch(UnsafeMutablePointer<Float>)
}

/// Floats of scratch `attentionForward(out:probs:...)` needs with `.scratch`: one tokens × tokens
/// block per worker thread (K and V panels then live in a buffer each thread keeps).
public func attentionScratchCount(batch: Int, heads: Int, tokens: Int, parallelism: Parallelism) -> Int {
    Swift.max(1, attentionWorkers(batch: batch, heads: heads, tokens: tokens, parallelism: parallelism)) * tokens * tokens
}

public func attentionForward(out: UnsafeMutablePointer<Float>, probs: AttentionProbabilities,
                             qkv: UnsafePointer<Float>, batch: Int, tokens: Int, heads: Int, headDim: Int,
                             parallelism: Parallelism) {
    let n = tokens
    switch probs {
    case .keep(let p):
        runAttention(out: out, qkv: qkv, batch: batch, tokens: tokens, heads: heads, headDim: headDim,
                     parallelism: parallelism) { item, _ in (p + item * n * n, nil, nil) }
    case .scratch(let p):
        runAttention(out: out, qkv: qkv, batch: batch, tokens: tokens, heads: heads, headDim: headDim,
                     parallelism: parallelism) { _, worker in (nil, p + worker * n * n, nil) }
    }
}

/// Floats of scratch the workspace form of `attentionForward` needs: scores and K/V panels for
/// each worker thread.
public func attentionScratchCount(tokens: Int, headDim: Int, parallelism: Parallelism) -> Int {
    Swift.max(1, parallelism.threads) * dk_attention_scratch_count(Int32(tokens), Int32(headDim))
}

/// `attentionForward` for inference, with every buffer supplied: `scratch` has room for
/// `attentionScratchCount(tokens:headDim:parallelism:)` floats. Allocates nothing.
public func attentionForward(out: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>, batch: Int, tokens: Int,
                             heads: Int, headDim: Int, scratch: UnsafeMutablePointer<Float>, parallelism: Parallelism) {
    let perWorker = dk_attention_scratch_count(Int32(tokens), Int32(headDim))
    let packCount = dk_attention_pack_count(Int32(tokens), Int32(headDim))
    runAttention(out: out, qkv: qkv, batch: batch, tokens: tokens, heads: heads, headDim: headDim,
                 parallelism: parallelism) { _, worker in
        let base = scratch + worker * perWorker
        return (nil, base + packCount, base)
    }
}

/// Worker threads the attention loop uses (work units are heads, or query ranges of heads).
func attentionWorkers(batch: Int, heads: Int, tokens: Int, parallelism: Parallelism) -> Int {
    let (units, _) = attentionUnits(batch: batch, heads: heads, tokens: tokens, threads: parallelism.threads)
    return Swift.min(units, parallelism.threads)
}

/// Heads × query parts: whole heads when there are at least four per thread, else each head split
/// into query ranges so that there are (the K/V packing is then repeated per range, a small cost).
/// The threads claim units as they go, so a thread slowed by another process costs one unit, not
/// its fixed share of the heads.
func attentionUnits(batch: Int, heads: Int, tokens: Int, threads: Int) -> (units: Int, parts: Int) {
    let items = batch * heads
    guard items > 0, tokens > 0 else { return (0, 1) }
    let parts = threads <= 1 ? 1 : Swift.min(tokens, Swift.max(1, (4 * threads + items - 1) / items))
    return (items * parts, parts)
}

/// The parallel loop over (item, query part); `buffers(item, worker)` gives probs, scores, packs.
func runAttention(out: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>, batch: Int, tokens: Int, heads: Int,
                  headDim: Int, parallelism: Parallelism,
                  buffers: (Int, Int) -> (UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>?)) {
    let dim = heads * headDim, n = tokens
    let (units, parts) = attentionUnits(batch: batch, heads: heads, tokens: tokens, threads: parallelism.threads)
    guard units > 0, headDim > 0 else { return }
    // 1/√headDim is a power of two for every released width (64 → 1/8), so scaling the scores
    // equals scaling q first (the older official code) or SDPA's internal scaling.
    let scale = Float(1 / Double(headDim).squareRoot())
    parallelForDynamic(units, chunk: 1, parallelism) { range, worker in
        for unit in range {
            let item = unit / parts, part = unit % parts
            let b = item / heads, h = item % heads
            let q0 = n * part / parts, q1 = n * (part + 1) / parts
            let rowBase = qkv + b * n * 3 * dim
            let (probs, scores, packs) = buffers(item, worker)
            dk_attention_head(Int32(n), Int32(headDim), rowBase + h * headDim, rowBase + dim + h * headDim,
                              rowBase + 2 * dim + h * headDim, 3 * dim, out + b * n * dim + h * headDim, dim, scale,
                              Int32(q0), Int32(q1), probs, scores, packs)
        }
    }
}
