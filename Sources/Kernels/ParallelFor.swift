import COpenBLAS
import Dispatch
import Foundation

/// How many threads DinoKit's own loops may use. A value passed down explicitly (no global
/// setting), so two models in one process can be run with different budgets.
///
/// DinoKit owns the threads: OpenBLAS is called single-threaded, from inside DinoKit's parallel
/// loops (GEMMs are split by rows, attention by batch × head), so BLAS threads and DinoKit threads
/// never compete for the cores.
public struct Parallelism: Sendable, Equatable {
    public var threads: Int

    public init(threads: Int) { self.threads = Swift.max(1, threads) }

    public static let serial = Parallelism(threads: 1)

    /// `DINOKIT_NUM_THREADS` when set to a positive integer, else the number of active cores.
    public static var fromEnvironment: Parallelism {
        if let s = ProcessInfo.processInfo.environment["DINOKIT_NUM_THREADS"], let n = Int(s), n > 0 {
            return Parallelism(threads: n)
        }
        return Parallelism(threads: ProcessInfo.processInfo.activeProcessorCount)
    }
}

/// OpenBLAS's thread count (process-wide state in OpenBLAS), set only when it changes. DinoKit
/// sets 1 before its parallel loops; callers who run their own big GEMMs may raise it.
public enum BLASThreads {
    public static func set(_ n: Int) {
        let want = Int32(Swift.max(1, n))
        if openblas_get_num_threads() != want { openblas_set_num_threads(want) }
    }
}

/// Runs `body` over `0..<count` split into at most `parallelism.threads` contiguous ranges, on
/// Dispatch's worker threads. BLAS is made single-threaded first, so bodies may call it.
/// Small `count`s and one thread run inline.
public func parallelFor(_ count: Int, _ parallelism: Parallelism, _ body: (Range<Int>) -> Void) {
    guard count > 0 else { return }
    let chunks = Swift.min(count, parallelism.threads)
    BLASThreads.set(1)
    if chunks == 1 {
        body(0..<count)
        return
    }
    withoutActuallyEscaping(body) { body in
        let box = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let lo = count * c / chunks, hi = count * (c + 1) / chunks
            if lo < hi { box.value(lo..<hi) }
        }
    }
}

/// `parallelFor` for loops whose bodies need a per-worker scratch slot: `body(range, worker)`
/// with `worker` in `0..<min(count, threads)`.
public func parallelForWorkers(_ count: Int, _ parallelism: Parallelism, _ body: (Range<Int>, Int) -> Void) {
    guard count > 0 else { return }
    let chunks = Swift.min(count, parallelism.threads)
    BLASThreads.set(1)
    if chunks == 1 {
        body(0..<count, 0)
        return
    }
    withoutActuallyEscaping(body) { body in
        let box = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let lo = count * c / chunks, hi = count * (c + 1) / chunks
            if lo < hi { box.value(lo..<hi, c) }
        }
    }
}

/// Carries a loop body into Dispatch's `@Sendable` worker closure. Sound here because
/// `concurrentPerform` returns only after every iteration has finished, and DinoKit's loop bodies
/// write disjoint ranges of their buffers (that is the contract of `parallelFor`).
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
