import Kernels
import TensorStore
import XCTest

/// Exact-erf GELU and SiLU (the SwiGLU gate) against PyTorch on synthetic and normal inputs.
final class ActivationTests: XCTestCase {
    func testGELUMatchesPyTorch() throws {
        try check(op: "gelu") { out, inp, n in geluForward(out: out, inp: inp, count: n) }
    }

    func testSiLUMatchesPyTorch() throws {
        try check(op: "silu") { out, inp, n in siluForward(out: out, inp: inp, count: n) }
    }

    func testSwiGLUGatesFirstHalfBySecond() {
        // silu(x1) · x2 per row, halves split as `chunk(2, dim=-1)`; silu itself is checked above.
        let u: [Float] = [1, -2, 3, 0.5, 4, -1]
        var out = [Float](repeating: 0, count: 3)
        swigluForward(out: &out, inp: u, rows: 1, hidden: 3)
        XCTAssertEqual(out, [silu(1) * 0.5, silu(-2) * 4, silu(3) * -1])
    }

    private func check(op: String, _ run: (UnsafeMutablePointer<Float>, UnsafePointer<Float>, Int) -> Void) throws {
        let cases = try KernelFixtures.cases(op: op)
        XCTAssertFalse(cases.isEmpty)
        for c in cases {
            let x = try c.tensor("input").floats(), expected = try c.tensor("output").floats()
            var out = [Float](repeating: 0, count: x.count)
            run(&out, x, x.count)
            let err = KernelFixtures.maxAbsError(out, expected)
            print("\(op) \(c.name): max abs error \(err)")
            XCTAssertLessThanOrEqual(err, 1e-6, c.name)
        }
    }
}
