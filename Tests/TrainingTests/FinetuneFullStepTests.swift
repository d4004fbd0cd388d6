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
/// against torch autograd (Scripts/fixtures/finetune_ref.py): the official DINOv2
/// DinoVisionTransformer (Fixtures/finetune/full.safetensors, backbone.safetensors), and the
/// official DINOv3 one — storage tokens, RoPE, masked key bias, eps 1e-5 — with an MLP
/// (full-v3, backbone-v3) and with SwiGLU and an untied cls_norm (full-v3-untied).
final class FinetuneFullStepTests: XCTestCase {
    func testGradientsMatchTorchAutograd() throws {
        try checkStep(backbone: "finetune/backbone.safetensors", reference: "finetune/full.safetensors", height: 28, width: 42)
    }

    func testDINOv3GradientsMatchTorchAutograd() throws {
        let config = try checkStep(backbone: "finetune/backbone-v3.safetensors", reference: "finetune/full-v3.safetensors",
                                   height: 32, width: 48)
        XCTAssertEqual(config.family, .dinov3)
        XCTAssertEqual(config.layerNormEps, 1e-5)
        XCTAssertFalse(config.architecture.untiedClassNorm)
    }

    func testDINOv3SwiGLUWithUntiedNormGradientsMatchTorchAutograd() throws {
        let config = try checkStep(backbone: "finetune/backbone-v3-untied.safetensors",
                                   reference: "finetune/full-v3-untied.safetensors", height: 32, width: 48)
        XCTAssertEqual(config.ffn, .swiglu)
        XCTAssertTrue(config.architecture.untiedClassNorm)
    }

    /// Loads the backbone, runs the step with the reference's pixels, labels and head at 1 and 2
    /// threads, and requires the loss and every gradient within autograd's (relative 1e-4 of the
    /// tensor's largest value; 1e-5 for the loss).
    @discardableResult
    func checkStep(backbone: String, reference: String, height: Int, width: Int,
                   file: StaticString = #filePath, line: UInt = #line) throws -> Config {
        let weightsPath = fixturePath(backbone)
        let hub = try KeyLayouts.canonicalize(try Safetensors.read(path: weightsPath)).store
        let config = try Config.detect(hubStore: hub)
        XCTAssertEqual(config.numHeads, 2)
        let ref = try Safetensors.read(path: fixturePath(reference))
        let labels = try LabelFile.labels(try XCTUnwrap(ref["labels"]), name: "labels")
        let model = try FullFinetuneModel(hubStore: hub, config: config, classes: 4, features: .clsAvgpool, file: weightsPath)
        let f = 2 * config.embedDim
        model.head.weight.update(from: try XCTUnwrap(ref["head.weight"]).floats(), count: 4 * f)
        model.head.bias.update(from: try XCTUnwrap(ref["head.bias"]).floats(), count: 4)

        var worst: (ratio: Float, name: String) = (0, "")
        for threads in [1, 2] {
            let result = try model.forwardBackward(pixels: try XCTUnwrap(ref["pixels"]).floats(), labels: labels,
                                                   height: height, width: width, parallelism: Parallelism(threads: threads))
            let loss = try XCTUnwrap(ref["loss"]).withContiguousBytes { $0.loadUnaligned(as: Double.self) }
            XCTAssertEqual(result.loss, loss, accuracy: 1e-5 * max(1, abs(loss)), "loss, \(threads) threads", file: file, line: line)

            var checked = 0
            for slot in model.backbone.layout.slots {
                guard let t = ref["grad.backbone." + slot.name] else {
                    XCTAssertEqual(slot.name, "mask_token", "torch has no gradient for \(slot.name)", file: file, line: line)
                    XCTAssertTrue(model.backboneGradients.array(slot.name).allSatisfy { $0 == 0 }, file: file, line: line)
                    continue
                }
                let r = assertRelativelyClose(model.backboneGradients.array(slot.name), t.floats(), tolerance: 1e-4,
                                              "backbone \(slot.name), \(threads) threads", file: file, line: line)
                if r > worst.ratio { worst = (r, slot.name) }
                checked += 1
            }
            // DINOv2's mask token has no gradient without masks; DINOv3's a zero one (cls + 0 · mask_token).
            XCTAssertGreaterThanOrEqual(checked, model.backbone.layout.slots.count - 1, file: file, line: line)
            for name in ["weight", "bias"] {
                let r = assertRelativelyClose(model.headGradients.array(name), try XCTUnwrap(ref["grad.head." + name]).floats(),
                                              tolerance: 1e-4, "head \(name)", file: file, line: line)
                if r > worst.ratio { worst = (r, "head." + name) }
            }
            if config.architecture.maskedKeyBias {
                // bias · bias_mask: the key third gets exactly nothing.
                let d = config.embedDim
                for i in 0..<config.depth {
                    let g = model.backboneGradients.array("blocks.\(i).attn.qkv.bias")
                    XCTAssertTrue(g[d..<(2 * d)].allSatisfy { $0 == 0 }, "block \(i) key bias gradient", file: file, line: line)
                }
            }
        }
        print("\(reference): worst gradient |diff| / max|ref| = \(worst.ratio) (\(worst.name))")
        return config
    }

    /// max |a − b| ≤ tolerance · max |b| over the tensor; returns max |a − b| / max |b|.
    @discardableResult
    func assertRelativelyClose(_ a: [Float], _ b: [Float], tolerance: Float, _ what: String,
                               file: StaticString = #filePath, line: UInt = #line) -> Float {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        let scale = max(b.map(abs).max() ?? 0, 1e-12)
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst / scale, tolerance, "\(what): max |diff| \(worst), max |ref| \(scale)", file: file, line: line)
        return worst / scale
    }
}
