import Kernels
import TensorStore

/// The last block's self-attention probabilities, for attention pictures.
public struct LastBlockAttention: Sendable {
    /// softmax(q kᵀ · headDim^-½) of the last block, (B, heads, T, T), T = 1 + R + h·w; row t is
    /// token t's query over every key (cls first, then registers, then patches in grid order).
    public var probabilities: Tensor
    public var heads: Int
    public var tokens: Int
    public var registerTokens: Int
    /// The patch grid (h, w).
    public var patchRows: Int
    public var patchCols: Int

    /// Image `b`'s cls→patch probabilities per head: `heads` arrays of h·w values (row-major grid).
    /// They do not sum to 1: the cls token's attention to itself and to registers is left out.
    public func clsToPatches(image b: Int) -> [[Float]] {
        let all = probabilities.floats()
        let t = tokens, first = 1 + registerTokens, patches = patchRows * patchCols
        return (0..<heads).map { h in
            let row = ((b * heads + h) * t) * t // query 0 (cls) of head h
            return Array(all[(row + first)..<(row + first + patches)])
        }
    }
}

extension Model {
    /// The attention probabilities of the last block, as the official `Attention.forward`
    /// computes them (`attn = (q * scale) @ k.T; attn.softmax(-1)`, DINOv3's RoPE first) in evaluation mode: the
    /// blocks before it run as in `forward`, then the last block's norm1 and qkv.
    public func lastBlockAttention(_ x: Tensor, workspace: Workspace? = nil) throws -> LastBlockAttention {
        let ws = workspace ?? Workspace()
        let c = config, d = c.embedDim
        // Blocks 0 … depth-2; `through: -1` (a one-block model) embeds the tokens only.
        let g = try runBlocks(x, masks: nil, through: c.depth - 2, workspace: ws) { _, _, _, _ in }
        let rows = g.rows, t = g.tokens
        let residual = ws.buffer(.residual, rows * d).pointer
        // Own buffers: the workspace's are sized for one pass of images, these for the whole batch.
        let normed = FloatBuffer(count: rows * d), qkv = FloatBuffer(count: rows * 3 * d)
        let attended = FloatBuffer(count: rows * d)
        try withBlockParameters(c.depth - 1) { block in
            layerNormForward(out: normed.pointer, mean: nil, rstd: nil, inp: residual, weight: block.norm1Weight.pointer,
                             bias: block.norm1Bias.pointer, rows: rows, cols: d, eps: c.layerNormEps, parallelism: parallelism)
            linearForward(out: qkv.pointer, inp: normed.pointer, weight: block.qkv, bias: block.qkvBias.pointer, rows: rows,
                          parallelism: parallelism)
        }
        rotaryPositions(patchRows: g.patchRows, patchCols: g.patchCols, workspace: ws)?
            .apply(qkv: qkv.pointer, batch: g.batch, tokens: t, prefix: 1 + c.registerTokens, heads: c.numHeads,
                   parallelism: parallelism)
        let storage = Storage(byteCount: g.batch * c.numHeads * t * t * 4)
        let probs = storage.mutableBytes.bindMemory(to: Float.self).baseAddress!
        attentionForward(out: attended.pointer, probs: .keep(probs), qkv: qkv.pointer, batch: g.batch, tokens: t,
                         heads: c.numHeads, headDim: c.headDim, parallelism: parallelism)
        return LastBlockAttention(
            probabilities: try Tensor(storage: storage, dtype: .f32, shape: [g.batch, c.numHeads, t, t]),
            heads: c.numHeads, tokens: t, registerTokens: c.registerTokens,
            patchRows: g.patchRows, patchCols: g.patchCols)
    }
}
