import DINOv2
import Formats
import Foundation
import Kernels
import TensorStore
import TestSupport
import XCTest
@testable import Training

/// `train finetune --mode full` end to end on a tiny DINOv3 backbone (Fixtures/finetune/
/// backbone-v3.safetensors: official hub layout, patch 8, 4 storage tokens, masked key bias) and
/// the tiny ImageFolder: the written backbone keeps the hub names and buffers, loads as a model,
/// and the key third of each qkv bias — which bias_mask keeps out of the forward — is unchanged.
final class FinetuneV3RunTests: XCTestCase {
    func testFullFinetuneOfADINOv3BackboneKeepsItsLayoutAndMaskedKeyBias() throws {
        let weights = fixturePath("finetune/backbone-v3.safetensors")
        let out = makeTemporaryDirectory("finetune-full-v3")
        defer { try? FileManager.default.removeItem(atPath: out) }
        var s = FinetuneSettings.defaults(for: .full)
        s.imageSize = 32
        s.resize = 40
        s.valFraction = 0.34
        s.seed = 3
        s.epochs = 2
        s.batchSize = 4
        let summary = try FinetuneRun(weights: weights, data: fixturePath("finetune/images"), out: out, settings: s,
                                      parallelism: Parallelism(threads: 2)).run()
        XCTAssertEqual(summary.epochs.count, 2)
        XCTAssertTrue(summary.epochs.allSatisfy { $0.trainLoss.isFinite && ($0.valLoss ?? .nan).isFinite })
        XCTAssertTrue(summary.files.contains("backbone.safetensors"))

        let tuned = try Safetensors.read(path: out + "/backbone.safetensors")
        let start = try Safetensors.read(path: weights)
        XCTAssertEqual(Set(tuned.names), Set(start.names), "the official hub names, buffers included")
        let model = try Model(store: tuned)
        XCTAssertEqual(model.config.family, .dinov3)
        XCTAssertEqual(model.config.registerTokens, 4)
        for name in ["rope_embed.periods", "blocks.0.attn.qkv.bias_mask", "blocks.1.attn.qkv.bias_mask", "mask_token"] {
            XCTAssertEqual(tuned[name]?.floats(), start[name]?.floats(), "\(name) is not trained")
        }
        for name in ["storage_tokens", "cls_token", "blocks.0.attn.qkv.weight", "blocks.1.mlp.fc1.weight", "norm.weight"] {
            XCTAssertNotEqual(tuned[name]?.floats(), start[name]?.floats(), "\(name) is trained")
        }
        let d = model.config.embedDim
        for i in 0..<model.config.depth {
            let a = try XCTUnwrap(tuned["blocks.\(i).attn.qkv.bias"]).floats(), b = try XCTUnwrap(start["blocks.\(i).attn.qkv.bias"]).floats()
            XCTAssertEqual(Array(a[d..<(2 * d)]), Array(b[d..<(2 * d)]), "block \(i): the masked key bias stays as stored")
            XCTAssertTrue(b[d..<(2 * d)].contains { $0 != 0 }, "the fixture's key bias is not zero")
            XCTAssertNotEqual(Array(a[0..<d]), Array(b[0..<d]), "block \(i): the query bias is trained")
        }
    }
}
