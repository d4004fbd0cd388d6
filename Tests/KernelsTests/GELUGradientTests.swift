import Foundation
import Kernels
import TensorStore
import XCTest

/// `geluGradient` (the training backward's GELU) on every kernel path against PyTorch's formula,
/// dy · (Φ(x) + x·φ(x)), evaluated in Float64; odd lengths exercise the masked tails.
final class GELUGradientTests: XCTestCase {
    func testEveryPathMatchesTheFormula() {
        let n = 1037
        // x over [-8, 8): both tails, where Φ saturates and φ underflows.
        let x = SyntheticInput.values(seed: 5, count: n).map { $0 * 4 }
        let dy = SyntheticInput.values(seed: 6, count: n)
        let expected: [Float] = zip(x, dy).map { xv, g in
            let v = Double(xv)
            let cdf = 0.5 * (1 + erf(v / 2.0.squareRoot()))
            let pdf = exp(-0.5 * v * v) / (2 * Double.pi).squareRoot()
            return Float(Double(g) * (cdf + v * pdf))
        }
        KernelPaths.each { path in
            for count in [n, 15, 1] {
                var out = [Float](repeating: .nan, count: count)
                geluGradient(dinp: &out, dout: dy, inp: x, count: count)
                for i in 0..<count {
                    XCTAssertEqual(out[i], expected[i], accuracy: 1e-6 * Swift.max(1, abs(expected[i])),
                                   "\(path.rawValue) x=\(x[i])")
                }
            }
        }
    }
}
