import Formats
import TensorStore
import TestSupport
import XCTest

final class TensorViewTests: XCTestCase {
    func testViewOutsideStorageIsRejected() {
        let s = Storage(byteCount: 16)
        XCTAssertThrowsError(try Tensor(storage: s, dtype: .f32, shape: [5]))
        XCTAssertThrowsError(try Tensor(storage: s, dtype: .f32, shape: [2, 2], strides: [3, 1]))
        XCTAssertThrowsError(try Tensor(storage: s, dtype: .f32, shape: [2], strides: [1], offset: 3))
        XCTAssertThrowsError(try Tensor(storage: s, dtype: .f32, shape: [Int.max, 2]))
        XCTAssertThrowsError(try Tensor(storage: s, dtype: .f32, shape: [-1]))
        XCTAssertNoThrow(try Tensor(storage: s, dtype: .f32, shape: [0, 9]))
    }

    func testTransposedViewMaterialisesInCOrder() throws {
        // NumPy wrote the Fortran-order file; reading gives a strided view whose C-order values
        // are NumPy's logical values 0.5 * arange(12) - 3 in (3, 4) C order.
        let t = try NPY.read(path: fixturePath("npy/f32_fortran_3x4.npy"))
        XCTAssertFalse(t.isContiguous)
        XCTAssertEqual(t.floats(), (0..<12).map { 0.5 * Float($0) - 3 })
        let c = t.contiguous()
        XCTAssertTrue(c.isContiguous)
        XCTAssertTrue(c.bitwiseEqual(t))
    }

    func testSyntheticInputMatchesPythonGenerator() throws {
        let reference = try NPY.read(path: fixturePath("npy/lcg_7_2x3x4.npy"))
        let ours = try SyntheticInput.tensor(seed: 7, shape: [2, 3, 4])
        XCTAssertTrue(ours.bitwiseEqual(reference))
    }
}

final class EmptyTensorTests: XCTestCase {
    func testEmptyTensorsAreContiguousAndComparable() throws {
        let t = try Tensor(storage: Storage(byteCount: 0), dtype: .f32, shape: [2, 0, 3], strides: [5, 7, 1])
        XCTAssertTrue(t.isContiguous)
        XCTAssertEqual(t.floats(), [])
        XCTAssertTrue(t.bitwiseEqual(try Tensor(shape: [2, 0, 3], floats: [])))
        XCTAssertEqual(try t.converted(to: .bf16).byteCount, 0)
    }
}
