import Kernels
import TensorStore
import XCTest

/// Path selection, and the elementwise kernels of every path (the SIMD ones use their own exp
/// and erfc) against the PyTorch fixtures that ActivationTests, SoftmaxTests and LayerNormTests
/// check on the default path.
final class KernelPathTests: XCTestCase {
    func testSelectionIsClampedToWhatTheCPUSupports() {
        let supported = KernelDispatch.supported
        let before = KernelDispatch.active
        KernelDispatch.with(.avx512) { XCTAssertEqual($0, min(.avx512, supported)) }
        KernelDispatch.with(.scalar) { XCTAssertEqual($0, .scalar) }
        XCTAssertEqual(KernelDispatch.active, before)
        print("kernel paths: supported \(supported.rawValue), active \(before.rawValue)")
    }

    func testEveryPathMatchesTheActivationFixtures() throws {
        for op in ["gelu", "silu"] {
            let cases = try KernelFixtures.cases(op: op)
            XCTAssertFalse(cases.isEmpty)
            try KernelPaths.each { path in
                for c in cases {
                    let x = try c.tensor("input").floats(), expected = try c.tensor("output").floats()
                    var out = [Float](repeating: 0, count: x.count)
                    if op == "gelu" { geluForward(out: &out, inp: x, count: x.count) } else { siluForward(out: &out, inp: x, count: x.count) }
                    let err = KernelFixtures.maxAbsError(out, expected)
                    print("\(path.rawValue) \(op) \(c.name): max abs error \(err)")
                    XCTAssertLessThanOrEqual(err, 1e-6, "\(path.rawValue) \(c.name)")
                }
            }
        }
    }

    func testEveryPathMatchesTheSoftmaxFixtures() throws {
        let cases = try KernelFixtures.cases(op: "softmax")
        XCTAssertFalse(cases.isEmpty)
        try KernelPaths.each { path in
            for c in cases {
                let x = try c.tensor("input"), expected = try c.tensor("output").floats()
                let cols = x.shape.dims.last ?? 1
                let xs = x.floats()
                var out = [Float](repeating: 0, count: xs.count)
                softmaxForward(out: &out, inp: xs, rows: xs.count / cols, cols: cols, parallelism: Parallelism(threads: 2))
                let err = KernelFixtures.maxAbsError(out, expected)
                print("\(path.rawValue) softmax \(c.name): max abs error \(err)")
                XCTAssertLessThanOrEqual(err, 1e-6, "\(path.rawValue) \(c.name)")
            }
        }
    }

    func testEveryPathMatchesTheLayerNormFixtures() throws {
        let cases = try KernelFixtures.cases(op: "layer_norm")
        XCTAssertFalse(cases.isEmpty)
        try KernelPaths.each { path in
            for c in cases {
                let x = try c.tensor("input").floats(), w = try c.tensor("weight").floats(), b = try c.tensor("bias").floats()
                let expected = try c.tensor("output").floats()
                let cols = w.count, rows = x.count / cols
                var out = [Float](repeating: 0, count: x.count)
                var mean = [Float](repeating: 0, count: rows), rstd = mean
                layerNormForward(out: &out, mean: &mean, rstd: &rstd, inp: x, weight: w, bias: b, rows: rows, cols: cols,
                                 eps: Float(c.double("eps") ?? 1e-6))
                let err = KernelFixtures.maxAbsError(out, expected)
                print("\(path.rawValue) layer_norm \(c.name): max abs error \(err)")
                XCTAssertLessThanOrEqual(err, 1e-5, "\(path.rawValue) \(c.name)")
                // The statistics a backward reads: the row mean, and 1/sqrt(var + eps), in Double.
                for r in 0..<rows {
                    let row = x[(r * cols)..<((r + 1) * cols)].map(Double.init)
                    let m = row.reduce(0, +) / Double(cols)
                    let v = row.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(cols)
                    XCTAssertEqual(Double(mean[r]), m, accuracy: 1e-6 * max(1, abs(m)), "\(path.rawValue) \(c.name) mean")
                    XCTAssertEqual(Double(rstd[r]), 1 / (v + 1e-6).squareRoot(), accuracy: 1e-6 / (v + 1e-6).squareRoot(),
                                   "\(path.rawValue) \(c.name) rstd")
                }
            }
        }
    }
}
