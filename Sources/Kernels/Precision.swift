import CKernels

/// The number format of the packed linear layers' GEMMs (`--precision`). LayerNorm, softmax,
/// GELU, attention and the residual stream stay float32 whatever the precision.
public enum Precision: String, CaseIterable, Sendable {
    /// float32 weights and activations: DinoKit's exact numerics, the default.
    case f32
    /// bfloat16 weights (rounded once at load as torch's `.to(torch.bfloat16)`; bf16 files keep
    /// their bits) and bf16-rounded activations as GEMM inputs, accumulated in float32 from the
    /// bias (AMX `tdpbf16ps` or AVX512_BF16 `vdpbf16ps` where the CPU has them, else bf16 widened
    /// to float), with the float32 epilogues.
    case bf16
    /// int8 weights, quantized once at load per output channel (s_w = max |W[o, :]| / 127,
    /// q = clamp(rint(W / s_w), ±127)), and int8 activations quantized per row (token) the same
    /// way as each GEMM packs them; the products are summed exactly in int32 (AMX `tdpbssd`,
    /// AVX512_VNNI `vpdpbusd`, else pmaddubsw or C: the same sums on every path), then
    /// y = (float(acc) · s_a) · s_w + bias enters the float32 epilogues.
    case int8
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

/// The bf16 GEMM tiles of the AVX-512 path (other paths widen bf16 to float).
public enum BF16Tile: Int32, CaseIterable, Sendable, Comparable {
    /// bf16 widened to float (A when packed, B in registers), float FMAs (also the avx2 and scalar
    /// paths' way); the default without AMX on Intel CPUs, where it is faster than `vdpbf16ps`.
    case widened = 0
    /// AVX512_BF16 `vdpbf16ps`; the default without AMX elsewhere.
    case vdpbf16ps = 1
    /// AMX-BF16 `tdpbf16ps` on 16 × 16 tiles (Sapphire Rapids and later).
    case amx = 2

    public static func < (a: BF16Tile, b: BF16Tile) -> Bool { a.rawValue < b.rawValue }
}

extension KernelDispatch {
    /// Whether this CPU has AVX512_BF16 (`vdpbf16ps`).
    public static var bf16NativeSupported: Bool { dk_bf16_native_supported() != 0 }

    /// Whether this CPU has AMX-BF16 and the OS lets DinoKit use the tiles.
    public static var bf16AMXSupported: Bool { dk_bf16_amx_supported() != 0 }

    /// The bf16 tiles this CPU can run on the AVX-512 path.
    public static var supportedBF16Tiles: [BF16Tile] {
        guard supported == .avx512 else { return [] }
        return [.widened] + (bf16NativeSupported ? [.vdpbf16ps] : []) + (bf16AMXSupported ? [.amx] : [])
    }

    /// Which bf16 GEMM tile the active path runs: "amx_bf16: tdpbf16ps", "avx512_bf16: vdpbf16ps",
    /// or the widening fallback of the avx512, avx2 or scalar path.
    public static var bf16Kernel: String { String(cString: dk_bf16_kernel_name()) }

    /// Makes the AVX-512 path run bf16 tile `tile` where the CPU has it (`.amx` without AMX: this
    /// CPU's faster vector tile; default: DINOKIT_TILES's choice, else `.amx`), so that tests run
    /// each one; returns the tile now used there. Process-wide, like `select`.
    @discardableResult
    public static func limitBF16Tile(_ tile: BF16Tile) -> BF16Tile {
        BF16Tile(rawValue: dk_set_bf16_level(tile.rawValue)) ?? .widened
    }
}

/// The int8 GEMM tiles of the AVX-512 path, fastest first (avx2 and scalar have one each).
public enum Int8Tile: Int32, CaseIterable, Sendable, Comparable {
    /// pmaddubsw on |a| and b · sign(a), pmaddwd into int32 (the avx2 path's tile).
    case pmaddubsw = 0
    /// AVX512_VNNI `vpdpbusd` (A + 128 as the unsigned operand, 128 · Σ q_w taken off).
    case vnni = 1
    /// AMX-INT8 `tdpbssd` on 16 × 16 tiles (Sapphire Rapids and later).
    case amx = 2

    public static func < (a: Int8Tile, b: Int8Tile) -> Bool { a.rawValue < b.rawValue }
}

extension KernelDispatch {
    /// Whether this CPU has AVX512_VNNI (`vpdpbusd`) on the AVX-512 path.
    public static var int8VNNISupported: Bool { dk_int8_vnni_supported() != 0 }

    /// Whether this CPU has AMX-INT8 and the OS lets DinoKit use the tiles.
    public static var int8AMXSupported: Bool { dk_int8_amx_supported() != 0 }

    /// The int8 tiles this CPU can run on the AVX-512 path.
    public static var supportedInt8Tiles: [Int8Tile] {
        guard supported == .avx512 else { return [] }
        return [.pmaddubsw] + (int8VNNISupported ? [.vnni] : []) + (int8AMXSupported ? [.amx] : [])
    }

    /// Which int8 GEMM tile the active path runs: "amx_int8: tdpbssd", "avx512_vnni: vpdpbusd",
    /// "avx2: int8 pmaddubsw to int32" (also the AVX-512 path's fallback) or "scalar: int8 in int32".
    public static var int8Kernel: String { String(cString: dk_int8_kernel_name()) }

    /// Lets the AVX-512 path use int8 tiles up to `tile` (default: DINOKIT_TILES's choice, else `.amx`),
    /// so that tests run each one; returns the tile now used there. Process-wide, like `select`.
    @discardableResult
    public static func limitInt8Tile(_ tile: Int8Tile) -> Int8Tile {
        Int8Tile(rawValue: dk_set_int8_level(tile.rawValue)) ?? .pmaddubsw
    }

    /// Test hook: with `true`, int8 GEMMs quantize their whole input with one scale (max |A| / 127)
    /// instead of one per row (token) — what per-tensor activation quantization would give, for
    /// measurements and to show that the int8 tolerance catches it. Process-wide; default false.
    @discardableResult
    public static func useInt8TensorScale(_ on: Bool) -> Bool { dk_set_int8_tensor_scale(on ? 1 : 0) != 0 }

    /// The GEMM kernel a packed linear layer of `precision` runs on the active path (`bench`'s
    /// "gemm_kernel"): the path for f32, the bf16 or int8 tile otherwise.
    public static func gemmKernel(for precision: Precision) -> String {
        switch precision {
        case .f32: return active.rawValue
        case .bf16: return bf16Kernel
        case .int8: return int8Kernel
        }
    }
}
