import Datasets
import DINOv2
import Formats
import Foundation
import Kernels
import TensorStore
import TestSupport
import XCTest
@testable import Training

/// One full fine-tuning forward/backward (backbone + linear head on cls+avgpool, cross-entropy)
/// against torch autograd through the official DinoVisionTransformer
/// (Fixtures/finetune/full.safetensors and backbone.safetensors, Scripts/fixtures/finetune_ref.py).
final class FinetuneFullStepTests: XCTestCase {
    func testGradientsMatchTorchAutograd() throws {
        let weightsPath = fixturePath("finetune/backbone.safetensors")
        let hub = try KeyLayouts.canonicalize(try Safetensors.read(path: weightsPath)).store
        let config = try Config.detect(hubStore: hub)
        XCTAssertEqual(config.numHeads, 2)
        let ref = try Safetensors.read(path: fixturePath("finetune/full.safetensors"))
        let labels = try LabelFile.labels(try XCTUnwrap(ref["labels"]), name: "labels")
        let model = try FullFinetuneModel(hubStore: hub, config: config, classes: 4, features: .clsAvgpool, file: weightsPath)
        model.head.weight.update(from: try XCTUnwrap(ref["head.weight"]).floats(), count: 4 * 32)
        model.head.bias.update(from: try XCTUnwrap(ref["head.bias"]).floats(), count: 4)

        for threads in [1, 2] {
            let result = try model.forwardBackward(pixels: try XCTUnwrap(ref["pixels"]).floats(), labels: labels,
                                                   height: 28, width: 42, parallelism: Parallelism(threads: threads))
            let loss = try XCTUnwrap(ref["loss"]).withContiguousBytes { $0.loadUnaligned(as: Double.self) }
            XCTAssertEqual(result.loss, loss, accuracy: 1e-5 * max(1, abs(loss)), "loss, \(threads) threads")

            var checked = 0
            for slot in model.backbone.layout.slots {
                guard let t = ref["grad.backbone." + slot.name] else {
                    XCTAssertEqual(slot.name, "mask_token", "torch has no gradient for \(slot.name)")
                    XCTAssertTrue(model.backboneGradients.array(slot.name).allSatisfy { $0 == 0 })
                    continue
                }
                assertRelativelyClose(model.backboneGradients.array(slot.name), t.floats(), tolerance: 1e-4,
                                      "backbone \(slot.name), \(threads) threads")
                checked += 1
            }
            XCTAssertEqual(checked, model.backbone.layout.slots.count - 1)
            assertRelativelyClose(model.headGradients.array("weight"), try XCTUnwrap(ref["grad.head.weight"]).floats(),
                                  tolerance: 1e-4, "head weight")
            assertRelativelyClose(model.headGradients.array("bias"), try XCTUnwrap(ref["grad.head.bias"]).floats(),
                                  tolerance: 1e-4, "head bias")
        }
    }

    /// max |a − b| ≤ tolerance · max |b| over the tensor.
    func assertRelativelyClose(_ a: [Float], _ b: [Float], tolerance: Float, _ what: String,
                               file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        let scale = max(b.map(abs).max() ?? 0, 1e-12)
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst / scale, tolerance, "\(what): max |diff| \(worst), max |ref| \(scale)", file: file, line: line)
    }
}
