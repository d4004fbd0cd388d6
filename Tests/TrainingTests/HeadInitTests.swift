import Foundation
import Kernels
import TestSupport
@testable import Training
import XCTest

/// The heads DinoKit builds for released backbones follow dino_head.py's init: MLP weights
/// trunc_normal(std 0.02), biases 0, `last_layer` a default nn.Linear (U(±1/√bottleneck)) under
/// weight_norm with g = 1; the teacher a copy of the student. Seeded: the same seed, the same heads.
final class HeadInitTests: XCTestCase {
    func testOfficialInitStatistics() throws {
        let head = HeadConfig(inDim: 64, outDim: 512, hiddenDim: 256, bottleneckDim: 64, layers: 3)
        let block = ParameterBlock(layout: headLayout(head))
        SSLStart.initializeHead(block, seed: 9, index: 1)
        for prefix in head.linearPrefixes {
            let w = block.array(prefix + "weight")
            let mean = w.reduce(0) { $0 + Double($1) } / Double(w.count)
            let std = (w.reduce(0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(w.count)).squareRoot()
            XCTAssertEqual(std, 0.02, accuracy: 0.001, prefix)
            XCTAssertEqual(mean, 0, accuracy: 0.001, prefix)
            XCTAssertTrue(block.array(prefix + "bias").allSatisfy { $0 == 0 }, prefix)
        }
        XCTAssertTrue(block.array("last_layer.weight_g").allSatisfy { $0 == 1 })
        let v = block.array("last_layer.weight_v"), bound = Float(1 / 8.0)
        XCTAssertTrue(v.allSatisfy { abs($0) <= bound })
        let vStd = (v.reduce(0) { $0 + Double($1) * Double($1) } / Double(v.count)).squareRoot()
        XCTAssertEqual(vStd, Double(bound) / 3.0.squareRoot(), accuracy: 0.003)
        let again = ParameterBlock(layout: headLayout(head))
        SSLStart.initializeHead(again, seed: 9, index: 1)
        XCTAssertEqual(again.array("mlp.0.weight"), block.array("mlp.0.weight"))
    }
}
