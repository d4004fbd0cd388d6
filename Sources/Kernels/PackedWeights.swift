import CKernels

/// An `nn.Linear` weight (out, in) rearranged once for the GEMM micro-kernel: panels of 32 output
/// features, each holding the in × 32 block of Wᵀ contiguously, zero-padded past `outFeatures`.
/// Made at model load; every forward then streams the panels without repacking. The same layout
/// serves every `KernelPath`.
public final class PackedLinearWeights: @unchecked Sendable {
    public let outFeatures: Int
    public let inFeatures: Int
    let panels: FloatBuffer

    /// Packs `weight`, stored (outFeatures, inFeatures) row-major as PyTorch stores it.
    public init(weight: UnsafePointer<Float>, outFeatures: Int, inFeatures: Int) {
        precondition(outFeatures > 0 && inFeatures > 0, "empty linear layer")
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        panels = FloatBuffer(count: dk_packed_count(Int32(outFeatures), Int32(inFeatures)))
        dk_pack_transposed(panels.pointer, weight, Int32(outFeatures), Int32(inFeatures), inFeatures)
    }

    public convenience init(_ weight: FloatBuffer, outFeatures: Int, inFeatures: Int) {
        precondition(weight.count >= outFeatures * inFeatures, "weight buffer too small")
        self.init(weight: weight.pointer, outFeatures: outFeatures, inFeatures: inFeatures)
    }

    /// Bytes the packed copy holds.
    public var byteCount: Int { panels.count * 4 }
}
