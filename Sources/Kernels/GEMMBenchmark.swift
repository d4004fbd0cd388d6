import CKernels
import COpenBLAS
import TensorStore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What OpenBLAS reports about itself.
public enum BLASInfo {
    /// The kernel family OpenBLAS chose for this CPU ("SkylakeX", "Haswell", "Prescott", ...). It
    /// follows `OPENBLAS_CORETYPE` when that is set at process start; otherwise OpenBLAS's own CPU
    /// detection, which falls back to "Prescott" (SSE3) on CPUs it does not know.
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }
}

/// Single-precision GEMM throughput, GFLOP/s, of DinoKit's packed micro-kernel and of OpenBLAS on
/// the same problem: C (m × n) = A (m × k) · Wᵀ with W (n × k), the shape of a linear layer.
public struct GEMMThroughput: Sendable, Equatable {
    public var dinokit: Double
    public var openblas: Double
}

/// Times both GEMMs with `threads` threads (DinoKit: rows split over its own threads; OpenBLAS:
/// its own thread pool) for about `seconds` each, after as long a warm-up, and returns the median
/// of five timed rounds. Inputs are seeded synthetic values.
public func measureGEMMThroughput(m: Int, n: Int, k: Int, threads: Int, seconds: Double = 2) -> GEMMThroughput {
    let a = FloatBuffer(SyntheticInput.values(seed: 1, count: m * k))
    let w = FloatBuffer(SyntheticInput.values(seed: 2, count: n * k))
    let c = FloatBuffer(count: m * n)
    let packed = PackedLinearWeights(w, outFeatures: n, inFeatures: k)
    let flops = 2.0 * Double(m) * Double(n) * Double(k)
    let p = Parallelism(threads: threads)

    func rate(_ body: () -> Void) -> Double {
        let warmEnd = monotonicSeconds() + seconds
        while monotonicSeconds() < warmEnd { body() }
        var rates: [Double] = []
        for _ in 0..<5 {
            let start = monotonicSeconds()
            var calls = 0
            repeat {
                body()
                calls += 1
            } while monotonicSeconds() - start < seconds / 5
            rates.append(flops * Double(calls) / (monotonicSeconds() - start) / 1e9)
        }
        return rates.sorted()[2]
    }

    let mine = rate {
        linearForward(out: c.pointer, inp: a.pointer, weight: packed, bias: nil, rows: m, parallelism: p)
    }
    BLASThreads.set(threads)
    let theirs = rate {
        sgemm(transB: true, m: m, n: n, k: k, a: a.pointer, lda: k, b: w.pointer, ldb: k, c: c.pointer, ldc: n)
    }
    BLASThreads.set(1)
    return GEMMThroughput(dinokit: mine, openblas: theirs)
}
