import Kernels
import XCTest

/// DinoKit's pool hands task indices out from one shared word (CKernels' pool.c): a thread that
/// read a finished loop must not claim an index of it, or of the next loop, by mistake. Many short
/// loops of changing size back to back give late threads every chance to; each index of each loop
/// must still run exactly once, before the loop returns.
final class ThreadPoolClaimTests: XCTestCase {
    func testBackToBackLoopsRunEveryIndexOnce() {
        let hits = UnsafeMutableBufferPointer<Int>.allocate(capacity: 8)
        defer { hits.deallocate() }
        var bad = 0
        for round in 0..<50_000 {
            let count = 2 + round % 5
            hits.initialize(repeating: 0)
            parallelForWorkers(count, Parallelism(threads: count)) { range, _ in
                for i in range { hits[i] += 1 }
            }
            if !hits.prefix(count).allSatisfy({ $0 == 1 }) || hits[count...].contains(where: { $0 != 0 }) { bad += 1 }
        }
        XCTAssertEqual(bad, 0, "loops in which an index ran other than once")
    }
}
