import Foundation
import Kernels

/// Where a forward's time goes, per step, summed over every forward run with a workspace that
/// carries it (`Workspace.profile`; `dinokit bench --profile`).
///
/// Times are thread-seconds: a step the calling thread times around a parallel loop (patch
/// embedding, attention) counts its wall time once per thread the model owns; the per-row steps
/// that threads run side by side (proj … qkv) count each thread's own time, and the time threads
/// spend waiting for the slowest one at the end of such a loop is a step of its own. The steps
/// therefore add up to threads × wall time. Costs two clock reads per step; nothing when absent.
public final class ForwardProfile: @unchecked Sendable {
    public struct Entry: Sendable {
        public var name: String
        public var threadSeconds: Double
        /// Multiply-adds × 2 of the step's GEMMs (0 for steps without one).
        public var flops: Double
        public var calls: Int
    }

    private var storage: [Entry] = []
    private var index: [String: Int] = [:]
    private let lock = NSLock()

    public init() {}

    public var entries: [Entry] { lock.withLock { storage } }

    /// Thread-seconds over all steps.
    public var threadSeconds: Double { lock.withLock { storage.reduce(0) { $0 + $1.threadSeconds } } }

    public func reset() {
        lock.withLock {
            storage = []
            index = [:]
        }
    }

    /// Times `body`, counted `threads` times (the threads that are busy or idle during it).
    func measure<R>(_ name: String, flops: Double = 0, threads: Int = 1, _ body: () throws -> R) rethrows -> R {
        let start = monotonicSeconds()
        defer { record(name, threadSeconds: (monotonicSeconds() - start) * Double(threads), flops: flops) }
        return try body()
    }

    func record(_ name: String, threadSeconds: Double, flops: Double = 0) {
        lock.withLock {
            if let i = index[name] {
                storage[i].threadSeconds += threadSeconds
                storage[i].flops += flops
                storage[i].calls += 1
            } else {
                index[name] = storage.count
                storage.append(Entry(name: name, threadSeconds: threadSeconds, flops: flops, calls: 1))
            }
        }
    }
}

extension Optional where Wrapped == ForwardProfile {
    /// Runs `body`, timed when a profile is attached.
    func measure<R>(_ name: String, flops: Double = 0, threads: Int = 1, _ body: () throws -> R) rethrows -> R {
        switch self {
        case .some(let p): return try p.measure(name, flops: flops, threads: threads, body)
        case .none: return try body()
        }
    }
}
