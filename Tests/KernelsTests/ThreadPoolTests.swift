import Foundation
import Kernels
import XCTest

/// DinoKit's own worker threads (CKernels' `dk_parallel`, under parallelFor, parallelForWorkers and
/// parallelForDynamic): every index exactly once, worker slots within range, and loops started
/// while another runs — nested, or from another thread — still complete (on their own thread).
final class ThreadPoolTests: XCTestCase {
    func testDynamicLoopVisitsEveryIndexOnceWithValidWorkerSlots() {
        for (count, chunk, threads) in [(0, 4, 2), (1, 1, 4), (10, 3, 2), (1000, 7, 3), (257, 132, 2)] {
            let hits = UnsafeMutableBufferPointer<Int>.allocate(capacity: Swift.max(count, 1))
            hits.initialize(repeating: 0)
            defer { hits.deallocate() }
            let slots = UnsafeMutableBufferPointer<Int>.allocate(capacity: Swift.max(count, 1))
            slots.initialize(repeating: -1)
            defer { slots.deallocate() }
            parallelForDynamic(count, chunk: chunk, Parallelism(threads: threads)) { range, worker in
                for i in range {
                    hits[i] += 1
                    slots[i] = worker
                }
            }
            XCTAssertTrue(hits.prefix(count).allSatisfy { $0 == 1 }, "\(count) in chunks of \(chunk) over \(threads)")
            XCTAssertTrue(slots.prefix(count).allSatisfy { $0 >= 0 && $0 < threads }, "worker slots")
        }
    }

    func testNestedLoopsComplete() {
        let outer = 6, inner = 50
        let hits = UnsafeMutableBufferPointer<Int>.allocate(capacity: outer * inner)
        hits.initialize(repeating: 0)
        defer { hits.deallocate() }
        parallelFor(outer, Parallelism(threads: 3)) { range in
            for o in range {
                parallelFor(inner, Parallelism(threads: 2)) { r in for i in r { hits[o * inner + i] += 1 } }
            }
        }
        XCTAssertTrue(hits.allSatisfy { $0 == 1 })
    }

    func testLoopsFromTwoThreadsAtOnceComplete() {
        let count = 4096, rounds = 200
        let done = DispatchGroup()
        let results = UnsafeMutableBufferPointer<Int>.allocate(capacity: 2)
        results.initialize(repeating: 0)
        defer { results.deallocate() }
        let box = UnsafeSendableBox(results)
        for caller in 0..<2 {
            DispatchQueue.global().async(group: done) {
                let sums = UnsafeMutableBufferPointer<Int>.allocate(capacity: 4)
                defer { sums.deallocate() }
                var total = 0
                for _ in 0..<rounds {
                    sums.initialize(repeating: 0)
                    parallelForWorkers(count, Parallelism(threads: 4)) { range, worker in
                        sums[worker] += range.reduce(0, +)
                    }
                    total += sums.reduce(0, +)
                }
                box.value[caller] = total
            }
        }
        XCTAssertEqual(done.wait(timeout: .now() + 60), .success)
        let expected = rounds * (count * (count - 1) / 2)
        XCTAssertEqual(Array(results), [expected, expected])
    }
}

private struct UnsafeSendableBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
