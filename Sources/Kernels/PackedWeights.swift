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
///
/// With `.int8` each output channel is quantized once, here (`dk_pack_transposed_int8`: scale
/// max |W[o, :]| / 127, values rint(W / scale) clamped to ±127), and the panels hold quads of k
/// steps per 32-bit word — a quarter of the bytes — beside the channels' scales and Σ_k q_w.
public final class PackedLinearWeights: @unchecked Sendable {
    public let outFeatures: Int
    public let inFeatures: Int
    public let precision: Precision
    /// f32: the float panels. bf16: the packed pairs, int8: the packed quads, one 32-bit word per
    /// element.
    let panels: FloatBuffer
    /// int8: per column (padded to whole panels) s_w, and Σ_k q_w as Int32 bits; empty otherwise.
    let channelScales: FloatBuffer
    let channelSums: FloatBuffer

    /// Packs `weight`, stored (outFeatures, inFeatures) row-major as PyTorch stores it.
    public init(weight: UnsafePointer<Float>, outFeatures: Int, inFeatures: Int, precision: Precision = .f32) {
        precondition(outFeatures > 0 && inFeatures > 0, "empty linear layer")
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        self.precision = precision
        let columns = precision == .int8 ? (outFeatures + Int(DK_NR) - 1) / Int(DK_NR) * Int(DK_NR) : 0
        channelScales = FloatBuffer(count: columns)
        channelSums = FloatBuffer(count: columns)
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
        case .int8:
            panels = FloatBuffer(count: dk_packed_int8_count(Int32(outFeatures), Int32(inFeatures)))
            let (words, scales, sums) = (panels, channelScales, channelSums)
            words.pointer.withMemoryRebound(to: UInt32.self, capacity: words.count) { w in
                sums.pointer.withMemoryRebound(to: Int32.self, capacity: sums.count) { s in
                    dk_pack_transposed_int8(w, scales.pointer, s, weight, Int32(outFeatures), Int32(inFeatures), inFeatures)
                }
            }
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
        channelScales = FloatBuffer(count: 0)
        channelSums = FloatBuffer(count: 0)
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
    public var byteCount: Int { (panels.count + channelScales.count + channelSums.count) * 4 }

    /// int8: the per-channel scales s_w (outFeatures values).
    public var int8Scales: [Float] { channelScales.array(count: precision == .int8 ? outFeatures : 0) }
}
