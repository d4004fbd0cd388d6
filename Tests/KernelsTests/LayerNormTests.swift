import Kernels
import TensorStore
import XCTest

/// `F.layer_norm(eps=1e-6)` at the tiny and ViT-S widths, and on rows with a large common offset
/// (where a one-pass float variance would lose digits).
final class LayerNormTests: XCTestCase {
    func testEveryLayerNormCaseMatchesPyTorch() throws {
        let cases = try KernelFixtures.cases(op: "layer_norm")
        XCTAssertGreaterThanOrEqual(cases.count, 3)
        for c in cases {
            let x = try c.tensor("input"), weight = try c.tensor("weight"), bias = try c.tensor("bias")
            let expected = try c.tensor("output")
            let cols = weight.elementCount, rows = x.elementCount / cols
            let eps = Float(c.double("eps") ?? 1e-6)
            let out = FloatBuffer(count: x.elementCount), mean = FloatBuffer(count: rows), rstd = FloatBuffer(count: rows)
            let xs = FloatBuffer(x.floats()), w = FloatBuffer(weight.floats()), b = FloatBuffer(bias.floats())
            layerNormForward(out: out.pointer, mean: mean.pointer, rstd: rstd.pointer, inp: xs.pointer,
                             weight: w.pointer, bias: b.pointer, rows: rows, cols: cols, eps: eps,
                             parallelism: Parallelism(threads: 2))
            let err = KernelFixtures.maxAbsError(out.array(), expected.floats())
            print("layer_norm \(c.name): max abs error \(err)")
            XCTAssertLessThanOrEqual(err, 1e-5, c.name)
        }
    }
}
