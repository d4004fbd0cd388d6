import Datasets
import Evaluation
import Foundation
import Images
import TensorStore
import TestSupport
import XCTest

/// The read-ahead reader hands out every input once, in order, from any start, with the same
/// tensors as a direct `Preprocess.batch` and failures reported per batch.
final class BatchReaderTests: XCTestCase {
    func testBatchesCoverTheInputsInOrderWithTheSameTensors() throws {
        let paths = EmbedFixtures.photos + [fixturePath("images/bad_truncated.jpg")] + EmbedFixtures.photos.prefix(2)
        // An exact resize, and a resize + crop (where applying the geometry twice would show).
        for preprocess in [Preprocess.resize(28), Preprocess.eval(resize: 32, crop: 28)] {
        for start in [0, 3, 8] {
            let reader = try BatchReader(paths: paths, preprocess: preprocess, batchSize: 3, threads: 2, start: start)
            var next = start, kept: [Int] = [], failed: [String] = []
            while let batch = try reader.next() {
                XCTAssertEqual(batch.start, next)
                XCTAssertEqual(batch.count, min(3, paths.count - next))
                let direct = try preprocess.batch(paths: Array(paths[next..<(next + batch.count)]))
                XCTAssertEqual(batch.tensor.floats(), direct.tensor.floats())
                XCTAssertEqual(batch.tensor.shape, direct.tensor.shape)
                XCTAssertEqual(batch.keptIndices.map { paths[$0] }, direct.paths)
                kept += batch.keptIndices
                failed += batch.failures.map(\.path)
                XCTAssertEqual(batch.failures.map(\.reason), direct.failures.map(\.error.description))
                next += batch.count
            }
            XCTAssertEqual(next, paths.count)
            XCTAssertNil(try reader.next())
            XCTAssertEqual(kept, (start..<paths.count).filter { $0 != 6 })
            XCTAssertEqual(failed, start <= 6 ? [paths[6]] : [])
        }
        }
    }
}
