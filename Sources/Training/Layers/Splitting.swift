import Foundation
import Kernels

/// `parallelFor` with dynamic chunks: `0..<count` in pieces of `grain` items handed to at most
/// `parallelism.threads` workers as they come free. On a machine where another process holds a
/// core for a while, the other worker takes over the remaining pieces instead of waiting, as a
/// static split into one range per thread would.
func parallelForDynamic(_ count: Int, grain: Int, _ parallelism: Parallelism, _ body: (Range<Int>) -> Void) {
    guard count > 0 else { return }
    let g = Swift.max(grain, 1)
    let chunks = (count + g - 1) / g
    let workers = Swift.min(parallelism.threads, chunks)
    if workers <= 1 {
        body(0..<count)
        return
    }
    let counter = ChunkCounter()
    parallelFor(workers, Parallelism(threads: workers)) { _ in
        while let c = counter.take(below: chunks) {
            body((c * g)..<Swift.min(count, (c + 1) * g))
        }
    }
}

/// Hands out 0, 1, 2, … to concurrent callers.
final class ChunkCounter: @unchecked Sendable {
    private var next = 0
    private let lock = NSLock()

    func take(below limit: Int) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard next < limit else { return nil }
        next += 1
        return next - 1
    }
}
