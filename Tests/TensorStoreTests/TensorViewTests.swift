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

    /// Every kind of view materialises to the C-order gather `offset + Σ index·stride` (the
    /// definition of a strided view): stride-0 dimensions inside and outside (broadcasts, which
    /// are filled by doubling copies), dimensions that merge, size-1 dimensions with any stride,
    /// plain element strides and overlapping windows.
    func testEveryViewKindMaterialisesAsTheGatherDefinesIt() throws {
        let base = (0..<64).map { Float($0) }
        let storage = try Tensor(shape: [64], floats: base).storage
        let views: [(shape: [Int], strides: [Int], offset: Int)] = [
            ([5, 3], [0, 1], 2), ([3, 5], [1, 0], 7), ([4, 1, 3], [0, 9, 0], 11), ([2, 3, 4], [12, 4, 1], 3),
            ([2, 3, 4], [0, 4, 1], 1), ([3, 2, 2], [5, 0, 2], 0), ([7], [3], 4), ([6, 4], [2, 1], 0),
            ([1, 1, 5], [99, 7, 0], 20), ([2, 2, 2, 2], [0, 8, 0, 1], 30),
        ]
        for v in views {
            let t = try Tensor(storage: storage, dtype: .f32, shape: Shape(v.shape), strides: v.strides, offset: v.offset)
            var expected: [Float] = []
            func gather(_ d: Int, _ at: Int) {
                if d == v.shape.count { expected.append(base[at]); return }
                for i in 0..<v.shape[d] { gather(d + 1, at + i * v.strides[d]) }
            }
            gather(0, v.offset)
            XCTAssertEqual(t.contiguous().floats(), expected, "\(v)")
        }
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
