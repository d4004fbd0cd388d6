import Kernels
import TensorStore
import XCTest

/// Row softmax (the attention normaliser) against `torch.softmax(dim=-1)`.
final class SoftmaxTests: XCTestCase {
    func testEverySoftmaxCaseMatchesPyTorch() throws {
        let cases = try KernelFixtures.cases(op: "softmax")
        XCTAssertFalse(cases.isEmpty)
        for c in cases {
            let x = try c.tensor("input"), expected = try c.tensor("output")
            let cols = x.shape.dims.last ?? 1, rows = x.elementCount / cols
            let xs = x.floats()
            var out = [Float](repeating: 0, count: xs.count)
            softmaxForward(out: &out, inp: xs, rows: rows, cols: cols, parallelism: Parallelism(threads: 2))
            let err = KernelFixtures.maxAbsError(out, expected.floats())
            print("softmax \(c.name): max abs error \(err)")
            XCTAssertLessThanOrEqual(err, 1e-6, c.name)
        }
    }
}
