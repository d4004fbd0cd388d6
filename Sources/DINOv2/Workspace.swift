import Kernels

/// Activation memory for forwards, reused from one call to the next: buffers grow to the largest
/// batch × tokens seen and are then handed out again, so a steady stream of same-sized forwards
/// allocates nothing here. Not thread-safe: one workspace per concurrent forward.
public final class Workspace {
    enum Role: Hashable {
        case pixels, patches, patchOut, resampleScratch
        case residual, normed, mean, rstd, qkv, attention, attentionScratch, branch, hidden, gated
        case classRows
    }

    private var buffers: [Role: FloatBuffer] = [:]

    /// The last interpolated position table and what it was made from: the same grid size from
    /// the same model gives the same table, so a stream of same-sized inputs resamples once. The
    /// source table is held (not just its address) so a freed model's memory can never match.
    struct PositionCacheKey: Equatable {
        let patchRows: Int, patchCols: Int, square: Bool
        let interpolation: PositionInterpolation
    }
    var positionCache: (source: FloatBuffer, key: PositionCacheKey, table: FloatBuffer)?

    /// When set, forwards with this workspace record the time of each step into it.
    public var profile: ForwardProfile?

    public init() {}

    /// A buffer of at least `count` floats for `role`; contents are whatever the last user left.
    func buffer(_ role: Role, _ count: Int) -> FloatBuffer {
        if let b = buffers[role], b.count >= count { return b }
        let b = FloatBuffer(count: count)
        buffers[role] = b
        return b
    }

    /// Bytes currently held (for `dinokit bench`'s memory report).
    public var byteCount: Int { buffers.values.reduce(0) { $0 + $1.count * 4 } }
}

/// Where one block's forward reads and writes (llm.c style: explicit buffers, sizes by the caller).
/// Inference points every block at the same workspace buffers; a training step will point each
/// block at its own, so the backward finds what it needs (normed inputs with their mean and
/// rstd, qkv, attention probabilities, FFN pre-activations).
public struct BlockActivations {
    /// (rows, D): residual stream, updated in place.
    public var residual: UnsafeMutablePointer<Float>
    /// (rows, D) LayerNorm outputs and (rows) statistics for norm1 and norm2.
    public var norm1: UnsafeMutablePointer<Float>, norm1Mean: UnsafeMutablePointer<Float>, norm1Rstd: UnsafeMutablePointer<Float>
    public var norm2: UnsafeMutablePointer<Float>, norm2Mean: UnsafeMutablePointer<Float>, norm2Rstd: UnsafeMutablePointer<Float>
    /// (rows, 3D).
    public var qkv: UnsafeMutablePointer<Float>
    public var probabilities: AttentionProbabilities
    /// (rows, D) heads concatenated, before `proj`.
    public var attention: UnsafeMutablePointer<Float>
    /// (rows, D) output of `proj`, then of `fc2`/`w3` (the branch added to the residual).
    public var attentionBranch: UnsafeMutablePointer<Float>
    public var ffnBranch: UnsafeMutablePointer<Float>
    /// (rows, hidden) fc1 pre-activation, or (rows, 2·hidden) w12 output for SwiGLU.
    public var hidden: UnsafeMutablePointer<Float>
    /// (rows, hidden) GELU(fc1) or silu(x1)·x2; may alias `hidden` for GELU in inference.
    public var gated: UnsafeMutablePointer<Float>
}
