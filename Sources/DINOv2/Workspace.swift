import Kernels

/// Activation memory for forwards, reused from one call to the next: buffers grow to the largest
/// batch × tokens seen and are then handed out again, so a steady stream of same-sized forwards
/// allocates nothing here. Not thread-safe: one workspace per concurrent forward.
public final class Workspace {
    enum Role: Hashable {
        case pixels, patches, patchOut, resampleScratch
        case residual, normed, qkv, attention, attentionScratch, branch, hidden, gated
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
    /// DINOv3's RoPE tables for the last grid, cached the same way (keyed by the periods buffer).
    var rotaryCache: (source: FloatBuffer, patchRows: Int, patchCols: Int, table: RotaryPositions)?

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
