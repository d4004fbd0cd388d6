import CKernels

/// An `nn.Linear` weight (out, in) rearranged once for the GEMM micro-kernel: panels of 32 output
/// features, each holding the in × 32 block of Wᵀ contiguously, zero-padded past `outFeatures`.
/// Made at model load; every forward then streams the panels without repacking. The same layout
/// serves every `KernelPath`.
///
/// With `precision` `.bf16` the weight is rounded to bfloat16 once, here (torch's rounding), or
/// taken as it is from a bf16 file's bits (`init(bf16Weight:)`), and the panels hold
/// pairs of k steps per 32-bit word (`dk_pack_transposed_bf16`): half the bytes. `linearForward`
/// runs the bf16 GEMM for such weights; nothing else changes.
public final class PackedLinearWeights: @unchecked Sendable {
    public let outFeatures: Int
    public let inFeatures: Int
    public let precision: Precision
    /// f32: the float panels. bf16: the packed pairs, one 32-bit word per element.
    let panels: FloatBuffer

    /// Packs `weight`, stored (outFeatures, inFeatures) row-major as PyTorch stores it.
    public init(weight: UnsafePointer<Float>, outFeatures: Int, inFeatures: Int, precision: Precision = .f32) {
        precondition(outFeatures > 0 && inFeatures > 0, "empty linear layer")
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        self.precision = precision
        switch precision {
        case .f32:
            panels = FloatBuffer(count: dk_packed_count(Int32(outFeatures), Int32(inFeatures)))
            dk_pack_transposed(panels.pointer, weight, Int32(outFeatures), Int32(inFeatures), inFeatures)
        case .bf16:
            let count = outFeatures * inFeatures
            let bits = UnsafeMutablePointer<UInt16>.allocate(capacity: count)
            defer { bits.deallocate() }
            dk_f32_to_bf16(bits, weight, count)
            panels = Self.packBF16(bits, outFeatures: outFeatures, inFeatures: inFeatures)
        }
    }

    /// Packs a bf16 weight (raw bfloat16 bits, (outFeatures, inFeatures) row-major) as it is: the
    /// same panels as its Float32 widening packed at `.bf16` (NaNs become torch's 0x7FC0 in both),
    /// without that widening.
    public init(bf16Weight: UnsafePointer<UInt16>, outFeatures: Int, inFeatures: Int) {
        precondition(outFeatures > 0 && inFeatures > 0, "empty linear layer")
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        precision = .bf16
        panels = Self.packBF16(bf16Weight, outFeatures: outFeatures, inFeatures: inFeatures)
    }

    public convenience init(_ weight: FloatBuffer, outFeatures: Int, inFeatures: Int, precision: Precision = .f32) {
        precondition(weight.count >= outFeatures * inFeatures, "weight buffer too small")
        self.init(weight: weight.pointer, outFeatures: outFeatures, inFeatures: inFeatures, precision: precision)
    }

    private static func packBF16(_ bits: UnsafePointer<UInt16>, outFeatures: Int, inFeatures: Int) -> FloatBuffer {
        let words = FloatBuffer(count: dk_packed_bf16_count(Int32(outFeatures), Int32(inFeatures)))
        words.pointer.withMemoryRebound(to: UInt32.self, capacity: words.count) {
            dk_pack_transposed_bf16($0, bits, Int32(outFeatures), Int32(inFeatures), inFeatures)
        }
        return words
    }

    /// Bytes the packed copy holds.
    public var byteCount: Int { panels.count * 4 }
}
