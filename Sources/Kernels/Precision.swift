import CKernels

/// The number format of the packed linear layers' GEMMs (`--precision`). LayerNorm, softmax,
/// GELU, attention and the residual stream stay float32 whatever the precision.
public enum Precision: String, CaseIterable, Sendable {
    /// float32 weights and activations: DinoKit's exact numerics, the default.
    case f32
    /// bfloat16 weights (rounded once at load as torch's `.to(torch.bfloat16)`; bf16 files keep
    /// their bits) and bf16-rounded activations as GEMM inputs, accumulated in float32 from the
    /// bias (AVX512_BF16 `vdpbf16ps`, or bf16 widened to float on other CPUs and paths), with the
    /// float32 epilogues.
    case bf16
}

/// bfloat16 conversions as PyTorch does them.
public enum BFloat16 {
    /// torch's float → bfloat16: round to nearest even; any NaN becomes 0x7FC0.
    public static func bits(_ x: Float) -> UInt16 {
        var v = x, out: UInt16 = 0
        dk_f32_to_bf16(&out, &v, 1)
        return out
    }

    /// The float a bf16 value stands for (exact).
    public static func float(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    /// `x` rounded to the nearest bfloat16, as a float.
    public static func round(_ x: Float) -> Float { float(bits(x)) }
}

extension KernelDispatch {
    /// Whether this CPU has AVX512_BF16 (`vdpbf16ps`).
    public static var bf16NativeSupported: Bool { dk_bf16_native_supported() != 0 }

    /// Which bf16 GEMM tile the active path runs: "avx512_bf16: vdpbf16ps", or the widening
    /// fallback of the avx512, avx2 or scalar path.
    public static var bf16Kernel: String { String(cString: dk_bf16_kernel_name()) }

    /// Allows or forbids the AVX512_BF16 tile (tests run the AVX-512 path's widening fallback on
    /// CPUs that have it); returns whether the native tile is now used. Process-wide, like `select`.
    @discardableResult
    public static func allowBF16Native(_ allowed: Bool) -> Bool { dk_set_bf16_native(allowed ? 1 : 0) != 0 }
}
