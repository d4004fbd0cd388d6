@testable import Formats
import TensorStore
import TestSupport
import XCTest

/// `TensorSurgery.concatenate` copies its parts when read (a deferred storage, so that layout
/// translation costs no memory until a tensor is used): every range of the result, through any
/// view, is `torch.cat`'s.
final class LazyConcatenationTests: XCTestCase {
    func testEveryRangeOfAConcatenationIsTorchCat() throws {
        let a = try SyntheticInput.tensor(seed: 1, shape: [3, 4, 5])
        let b = try SyntheticInput.tensor(seed: 2, shape: [3, 2, 5])
        let c = try SyntheticInput.tensor(seed: 3, shape: [3, 1, 5])
        // Along axis 1: per outer index, a's 4 rows, b's 2, c's 1.
        let joined = try TensorSurgery.concatenate([("a", a), ("b", b), ("c", c)], axis: 1)
        XCTAssertEqual(joined.shape.dims, [3, 7, 5])
        var expected: [Float] = []
        let (fa, fb, fc) = (a.floats(), b.floats(), c.floats())
        for o in 0..<3 {
            expected += fa[(o * 20)..<((o + 1) * 20)]
            expected += fb[(o * 10)..<((o + 1) * 10)]
            expected += fc[(o * 5)..<((o + 1) * 5)]
        }
        XCTAssertEqual(joined.floats(), expected)
        // Views starting and ending inside one part's run, and across outer rows.
        for (offset, count) in [(0, 1), (3, 17), (19, 2), (20, 11), (34, 36), (104, 1), (0, 105)] {
            let view = try Tensor(storage: joined.storage, dtype: .f32, shape: [count], offset: offset)
            XCTAssertEqual(view.floats(), Array(expected[offset..<(offset + count)]), "elements \(offset)..<\(offset + count)")
        }
        // A strided part (a transposed view) is taken in its C order.
        let t = try Tensor(storage: a.storage, dtype: .f32, shape: [5, 4], strides: [1, 5])
        let rows = try TensorSurgery.concatenate([("t", t), ("u", try SyntheticInput.tensor(seed: 4, shape: [2, 4]))], axis: 0)
        XCTAssertEqual(rows.floats(), t.floats() + SyntheticInput.values(seed: 4, count: 8))
    }
}
