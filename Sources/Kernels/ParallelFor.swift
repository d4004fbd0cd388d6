import CKernels
import COpenBLAS
import Foundation

/// How many threads DinoKit's own loops may use. A value passed down explicitly (no global
/// setting), so two models in one process can be run with different budgets.
///
/// DinoKit owns the threads: its loops run on its own worker threads (CKernels' `dk_parallel`),
/// GEMMs split by rows and attention by batch × head; OpenBLAS, where it is still called, is made
/// single-threaded and called from inside those loops, so BLAS threads and DinoKit threads never
/// compete for the cores.
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
/// DinoKit's worker threads (CKernels' `dk_parallel`: the calling thread takes the first range).
/// BLAS is made single-threaded first, so bodies may call it. Small `count`s and one thread run
/// inline. Allocates nothing.
public func parallelFor(_ count: Int, _ parallelism: Parallelism, _ body: (Range<Int>) -> Void) {
    parallelForWorkers(count, parallelism) { range, _ in body(range) }
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
    runTasks(chunks) { c, n in
        let lo = count * c / n, hi = count * (c + 1) / n
        if lo < hi { body(lo..<hi, c) }
    }
}

/// Runs task(i, n) for i in 0..<n through `dk_parallel`. The closure travels as a pointer to a
/// stack value; the only heap traffic is the small object Swift allocates per call to check that
/// the closure did not escape.
func runTasks(_ n: Int, _ task: (Int, Int) -> Void) {
    withoutActuallyEscaping(task) { task in
        var context = TaskContext(task: task)
        withUnsafeMutablePointer(to: &context) { dk_parallel(Int32(n), taskTrampoline, $0) }
    }
}

private struct TaskContext {
    let task: (Int, Int) -> Void
}

private let taskTrampoline: @convention(c) (UnsafeMutableRawPointer?, Int32, Int32) -> Void = { context, index, count in
    context!.assumingMemoryBound(to: TaskContext.self).pointee.task(Int(index), Int(count))
}

/// Runs `body` over `0..<count` in chunks of `chunk` indices that `parallelism.threads` workers
/// take from a shared counter as they finish the previous one: an uneven machine (a core shared
/// with another process) then slows the loop by its lost share, not by a whole static range.
/// `body(range, worker)` gets `worker` in `0..<min(chunks, threads)` for per-worker scratch.
public func parallelForDynamic(_ count: Int, chunk: Int, _ parallelism: Parallelism,
                               _ body: (Range<Int>, Int) -> Void) {
    guard count > 0 else { return }
    let size = Swift.max(1, chunk), chunks = (count + size - 1) / size
    let workers = Swift.min(chunks, parallelism.threads)
    if workers == 1 {
        BLASThreads.set(1)
        body(0..<count, 0)
        return
    }
    // The shared counter lives on this thread's stack: no allocation per loop.
    withUnsafeTemporaryAllocation(of: Int.self, capacity: 1) { next in
        next.initialize(repeating: 0)
        let counter = next.baseAddress!
        BLASThreads.set(1)
        runTasks(workers) { worker, _ in
            while true {
                let c = dk_fetch_add(counter, 1)
                if c >= chunks { break }
                body((c * size)..<Swift.min(count, (c + 1) * size), worker)
            }
        }
    }
}

/// How many pieces to split `count` items of a loop into when the whole loop does `work`
/// multiply-adds: one piece for small loops (a thread handoff costs more than the work), else up
/// to one per thread with at least `minimum` items each. Package-wide: the layer backward passes
/// here (LayerNorm) and in Training split their loops by it.
@inlinable
package func pieces(_ count: Int, work: Int, minimum: Int = 1, _ parallelism: Parallelism) -> Parallelism {
    guard parallelism.threads > 1, work >= 1 << 16, count >= 2 * minimum else { return .serial }
    return Parallelism(threads: Swift.min(parallelism.threads, count / Swift.max(minimum, 1)))
}
