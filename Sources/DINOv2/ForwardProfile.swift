#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Wall time spent in each step of the forward, summed over every forward run with a workspace
/// that carries it (`Workspace.profile`; `dinokit bench --profile`). A step is one parallel loop
/// (a fused GEMM, the attention, a LayerNorm), timed from the calling thread, so it includes the
/// threads' start and join. Costs two clock reads per step; nothing when absent.
public final class ForwardProfile {
    public struct Entry: Sendable {
        public var name: String
        public var seconds: Double
        /// Multiply-adds × 2 of the step's GEMMs (0 for steps without one).
        public var flops: Double
        public var calls: Int
    }

    public private(set) var entries: [Entry] = []
    private var index: [String: Int] = [:]

    public init() {}

    public func reset() {
        entries = []
        index = [:]
    }

    /// Total seconds over all steps.
    public var seconds: Double { entries.reduce(0) { $0 + $1.seconds } }

    func measure<R>(_ name: String, flops: Double = 0, _ body: () throws -> R) rethrows -> R {
        let start = Self.now()
        defer { record(name, seconds: Self.now() - start, flops: flops) }
        return try body()
    }

    func record(_ name: String, seconds: Double, flops: Double = 0) {
        if let i = index[name] {
            entries[i].seconds += seconds
            entries[i].flops += flops
            entries[i].calls += 1
        } else {
            index[name] = entries.count
            entries.append(Entry(name: name, seconds: seconds, flops: flops, calls: 1))
        }
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}

extension Optional where Wrapped == ForwardProfile {
    /// Runs `body`, timed when a profile is attached.
    func measure<R>(_ name: String, flops: Double = 0, _ body: () throws -> R) rethrows -> R {
        switch self {
        case .some(let p): return try p.measure(name, flops: flops, body)
        case .none: return try body()
        }
    }
}
