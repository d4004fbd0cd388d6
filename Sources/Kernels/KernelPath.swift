import CKernels

/// The instruction set DinoKit's own kernels (GEMM micro-kernel, attention, LayerNorm, GELU,
/// softmax) run with. The fastest one the CPU supports is used unless `DINOKIT_KERNELS`
/// (`avx512`, `avx2` or `scalar`, read once at first use) asks for a slower one; tests and
/// benchmarks may switch with `KernelDispatch.select`. Every path computes the same function to
/// within float rounding, and weights packed for one path serve all of them.
public enum KernelPath: String, CaseIterable, Sendable, Comparable {
    /// Portable C: any CPU, any architecture.
    case scalar
    /// x86-64 with AVX2 and FMA (Haswell, Zen 1 and later).
    case avx2
    /// x86-64 with AVX-512 F/DQ/VL (Skylake-X, Ice Lake, Sapphire Rapids, Zen 4 and later).
    case avx512

    init(code: Int32) {
        switch code {
        case Int32(DK_PATH_AVX512): self = .avx512
        case Int32(DK_PATH_AVX2): self = .avx2
        default: self = .scalar
        }
    }

    var code: Int32 {
        switch self {
        case .scalar: return Int32(DK_PATH_SCALAR)
        case .avx2: return Int32(DK_PATH_AVX2)
        case .avx512: return Int32(DK_PATH_AVX512)
        }
    }

    public static func < (a: KernelPath, b: KernelPath) -> Bool { a.code < b.code }
}

/// What the dispatcher reads of an x86-64 CPU: CPUID feature bits and XCR0 (the register states
/// the OS saves on a context switch).
public struct CPUFeatures: Sendable {
    public var fma = false, osxsave = false, avx = false, avx2 = false
    public var avx512f = false, avx512dq = false, avx512vl = false
    public var xcr0: UInt64 = 0
    public init() {}
}

public enum KernelDispatch {
    /// The best path this CPU (and OS) supports.
    public static var supported: KernelPath { KernelPath(code: dk_supported_path()) }

    /// The path a CPU with these features gets: the rule `supported` applies to this one.
    public static func path(for cpu: CPUFeatures) -> KernelPath {
        func bit(_ b: Bool) -> Int32 { b ? 1 : 0 }
        let f = dk_cpu_features(fma: bit(cpu.fma), osxsave: bit(cpu.osxsave), avx: bit(cpu.avx), avx2: bit(cpu.avx2),
                                avx512f: bit(cpu.avx512f), avx512dq: bit(cpu.avx512dq), avx512vl: bit(cpu.avx512vl),
                                xcr0: cpu.xcr0)
        return KernelPath(code: dk_path_for_cpu(f))
    }

    /// The path in use.
    public static var active: KernelPath { KernelPath(code: dk_active_path()) }

    /// Rows of the GEMM micro-tile on the active path: packed `linearForward`s split rows between
    /// threads in multiples of it, and so should callers that split rows themselves.
    public static var tileRows: Int { Int(dk_tile_rows()) }

    /// Uses `path`, or the best supported one below it; returns the path now active. Process-wide:
    /// call it only while no kernels run on other threads.
    @discardableResult
    public static func select(_ path: KernelPath) -> KernelPath { KernelPath(code: dk_set_path(path.code)) }

    /// Runs `body` with `path` selected (clamped to what is supported), then restores the previous path.
    public static func with<R>(_ path: KernelPath, _ body: (KernelPath) throws -> R) rethrows -> R {
        let previous = active
        defer { select(previous) }
        return try body(select(path))
    }
}
