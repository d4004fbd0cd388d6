import Foundation
import Formats
import TensorStore
import TestSupport
import XCTest

/// DINOv3 layout detection and translation against Fixtures/models/mini-v3-* (Scripts/fixtures/
/// layouts_v3.py): the hub `.pth` files are torch.save of the official DinoVisionTransformer's
/// state dict (a non-zero key bias third, bias_mask 1 0 1); the HF folders were written by
/// transformers' save_pretrained, the timm files are timm's own eva.checkpoint_filter_fn output,
/// the teacher checkpoint is the official `{"teacher": ModuleDict(backbone, dino_head,
/// ibot_head)}`. Every comparison is bit for bit; where a layout lacks a value, the store is
/// compared with what the layout implies (key bias third zeros, no periods, no mask token).
final class KeyLayoutsV3Tests: XCTestCase {
    static let tied = ["mini-v3-plain", "mini-v3-swiglu"]
    static let all = tied + ["mini-v3-untied"]

    // MARK: detect

    func testDetectsTheLayoutOfEveryDINOv3Fixture() throws {
        for name in Self.all {
            let hub = try LayoutFixture.hub(name)
            XCTAssertEqual(KeyLayouts.detect(hub), .hub, name)
            XCTAssertTrue(BackboneArchitecture.isDINOv3(hubStore: hub), name)
        }
        for name in Self.tied {
            for (store, layout) in [(try LayoutFixture.hf(name), Layout.hf), (try LayoutFixture.timm(name), .timm)] {
                XCTAssertEqual(KeyLayouts.detect(store), layout, "\(name) \(layout)")
                XCTAssertTrue(BackboneArchitecture.isDINOv3(hubStore: try KeyLayouts.canonicalize(store).store), "\(name) \(layout)")
            }
        }
        XCTAssertEqual(KeyLayouts.detect(try LayoutFixture.pth("mini-v3-plain-teacher_checkpoint.pth")), .training)
    }

    /// The DINOv3 names next to DINOv2's: every DINOv2 fixture keeps its layout, comes back as a
    /// DINOv2 backbone (a position table, no storage tokens) and renders DINOv2's names.
    func testDINOv2FixturesStayDINOv2InEveryLayout() throws {
        var stores: [(String, TensorStore, Layout)] = []
        for name in KeyLayoutsTests.minis {
            stores += [(name, try LayoutFixture.hub(name), .hub), (name, try LayoutFixture.hf(name), .hf),
                       (name, try LayoutFixture.timm(name), .timm)]
        }
        stores += [("teacher", try LayoutFixture.pth("mini-plain-teacher_checkpoint.pth"), .training),
                   ("model_0", try LayoutFixture.pth("mini-plain-model_0.rank_0.pth"), .training)]
        for (name, store, layout) in stores {
            XCTAssertEqual(KeyLayouts.detect(store), layout, "\(name) \(layout)")
            let hub = try KeyLayouts.canonicalize(store).store
            XCTAssertFalse(BackboneArchitecture.isDINOv3(hubStore: hub), "\(name) \(layout)")
            XCTAssertNotNil(hub["pos_embed"], "\(name) \(layout)")
            XCTAssertNil(hub["storage_tokens"], "\(name) \(layout)")
            XCTAssertFalse(hub.metadata.keys.contains { $0.hasPrefix("dinokit.hub.") }, "\(name) \(layout)")
        }
        for name in KeyLayoutsTests.minis {
            let timm = try KeyLayouts.render(try LayoutFixture.hub(name), as: .timm)
            XCTAssertTrue(timm.names.contains("blocks.0.ls1.gamma") && !timm.names.contains("blocks.0.gamma_1"), name)
            XCTAssertTrue(timm.names.contains("pos_embed") && timm.names.contains("blocks.0.attn.qkv.bias"), name)
        }
    }

    // MARK: hf

    func testHFFolderCanonicalizesToWhatTheLayoutImplies() throws {
        for name in Self.tied {
            let (store, layout) = try KeyLayouts.canonicalize(try LayoutFixture.hf(name))
            XCTAssertEqual(layout, .hf)
            let hub = try LayoutFixture.hub(name)
            LayoutFixture.assertSame(store, try V3Fixture.implied(hub, keepingMaskToken: true), ordered: true, name)
            XCTAssertEqual(store.metadata["num_heads"], "2", name)
            XCTAssertEqual(store.metadata["hf.rope_theta"], "100.0", name)
            // The key third HF lacks is what the official mask made of it: nothing.
            XCTAssertFalse(try XCTUnwrap(store["blocks.0.attn.qkv.bias"]).bitwiseEqual(try XCTUnwrap(hub["blocks.0.attn.qkv.bias"])), name)
        }
    }

    func testRenderHFEqualsWhatTransformersWrote() throws {
        for name in Self.tied {
            let rendered = try KeyLayouts.render(try LayoutFixture.hub(name), as: .hf)
            LayoutFixture.assertSame(rendered, try LayoutFixture.hf(name), ordered: false, name)
            V3Fixture.assertCarried(rendered, ["rope_embed.periods", "blocks.0.attn.qkv.bias.k", "blocks.1.attn.qkv.bias.k"],
                                    notCarried: ["mask_token", "blocks.0.attn.qkv.bias_mask"], name)
        }
    }

    func testHubToHFToHubIsBitIdenticalThroughASafetensorsFile() throws {
        for name in Self.tied {
            try V3Fixture.assertRoundTrip(try LayoutFixture.hub(name), through: .hf, name)
        }
    }

    // MARK: timm

    func testTimmFileCanonicalizesToWhatTheLayoutImplies() throws {
        for name in Self.tied {
            let timm = try LayoutFixture.timm(name)
            let (store, layout) = try KeyLayouts.canonicalize(timm)
            XCTAssertEqual(layout, .timm)
            LayoutFixture.assertSame(store, try V3Fixture.implied(try LayoutFixture.hub(name), keepingMaskToken: false), ordered: true, name)
            XCTAssertEqual(store.metadata["dinokit.mask_token"], "absent", name)
            XCTAssertFalse(store.metadata.keys.contains { $0.hasPrefix("dinokit.hub.") }, name)
        }
    }

    func testRenderTimmEqualsWhatTimmsConverterWrote() throws {
        for name in Self.tied {
            let rendered = try KeyLayouts.render(try LayoutFixture.hub(name), as: .timm)
            LayoutFixture.assertSame(rendered, try LayoutFixture.timm(name), ordered: false, name)
            V3Fixture.assertCarried(rendered, ["mask_token", "rope_embed.periods", "blocks.0.attn.qkv.bias.k", "blocks.1.attn.qkv.bias.k"],
                                    notCarried: ["blocks.0.attn.qkv.bias_mask"], name)
        }
    }

    /// The order timm's converter gives (the hub order, renamed; `q_bias`, `v_bias` where the bias was).
    func testRenderTimmFollowsTheConvertersOrder() throws {
        let names = try KeyLayouts.render(try LayoutFixture.hub("mini-v3-swiglu"), as: .timm).names
        XCTAssertEqual(Array(names.prefix(13)), [
            "cls_token", "reg_token", "patch_embed.proj.weight", "patch_embed.proj.bias",
            "blocks.0.norm1.weight", "blocks.0.norm1.bias", "blocks.0.attn.qkv.weight", "blocks.0.attn.q_bias", "blocks.0.attn.v_bias",
            "blocks.0.attn.proj.weight", "blocks.0.attn.proj.bias", "blocks.0.gamma_1", "blocks.0.norm2.weight",
        ])
        XCTAssertEqual(Array(names.suffix(9)), [
            "blocks.1.mlp.fc1_g.weight", "blocks.1.mlp.fc1_g.bias", "blocks.1.mlp.fc1_x.weight", "blocks.1.mlp.fc1_x.bias",
            "blocks.1.mlp.fc2.weight", "blocks.1.mlp.fc2.bias", "blocks.1.gamma_2", "norm.weight", "norm.bias",
        ])
    }

    func testHubToTimmToHubIsBitIdenticalThroughASafetensorsFile() throws {
        for name in Self.tied {
            try V3Fixture.assertRoundTrip(try LayoutFixture.hub(name), through: .timm, name)
        }
    }

    /// Values neither library has a slot for, beyond the fixtures' own: a mask that lets the key bias
    /// act, a -0.0 key bias (zero, but not zero bytes), the training-only local_cls_norm.
    func testUnusualValuesAreCarriedBothWays() throws {
        var hub = try LayoutFixture.hub("mini-v3-plain")
        let d = 16
        hub["blocks.1.attn.qkv.bias_mask"] = try Tensor(shape: [3 * d], floats: Array(repeating: 1, count: 3 * d))
        var bias = try XCTUnwrap(hub["blocks.0.attn.qkv.bias"]).floats()
        for j in d..<(2 * d) { bias[j] = 0 }
        bias[d + 3] = -0.0
        hub["blocks.0.attn.qkv.bias"] = try Tensor(shape: [3 * d], floats: bias)
        try hub.insert(try Tensor(shape: [d], floats: (0..<d).map { 1 + Float($0) / 64 }), named: "local_cls_norm.weight")
        try hub.insert(try Tensor(shape: [d], floats: (0..<d).map { Float($0) / 128 }), named: "local_cls_norm.bias")
        for layout in [Layout.hf, .timm] {
            let rendered = try KeyLayouts.render(hub, as: layout)
            XCTAssertFalse(rendered.names.contains { $0.contains("local_cls_norm") }, "\(layout)")
            V3Fixture.assertCarried(rendered, ["blocks.1.attn.qkv.bias_mask", "blocks.0.attn.qkv.bias.k", "local_cls_norm.weight"],
                                    notCarried: ["blocks.0.attn.qkv.bias_mask"], "\(layout)")
            try V3Fixture.assertRoundTrip(hub, through: layout, "\(layout)")
        }
    }

    /// A carried value that no longer fits the weights (edited after DinoKit wrote the file) gives
    /// way to what the layout implies.
    func testCarriedKeyBiasThatNoLongerFitsIsIgnored() throws {
        var rendered = try KeyLayouts.render(try LayoutFixture.hub("mini-v3-plain"), as: .timm)
        rendered["blocks.0.attn.q_bias"] = try XCTUnwrap(rendered["blocks.0.attn.q_bias"]).converted(to: .bf16)
        rendered["blocks.0.attn.v_bias"] = try XCTUnwrap(rendered["blocks.0.attn.v_bias"]).converted(to: .bf16)
        let bias = try XCTUnwrap(try KeyLayouts.canonicalize(rendered).store["blocks.0.attn.qkv.bias"])
        XCTAssertEqual(bias.dtype, .bf16)
        XCTAssertTrue(try LayoutFixture.slice(bias, 16..<32, axis: 0).floats().allSatisfy { $0.bitPattern == 0 })
    }

    /// timm's `vit_*_patch16_dinov3` entries (no `_qkvb`) have no qkv bias: the hub store has none either.
    func testTimmWithoutQKVBiasHasNoBiasOrMask() throws {
        var timm = try LayoutFixture.timm("mini-v3-plain")
        for name in timm.names where name.hasSuffix("_bias") && name.contains(".attn.") { timm.remove(name) }
        let store = try KeyLayouts.canonicalize(timm).store
        XCTAssertFalse(store.names.contains { $0.contains("attn.qkv.bias") })
        XCTAssertNotNil(store["blocks.1.ls2.gamma"])
    }

    // MARK: refusals

    func testUntiedClassNormRefusesHFAndTimmByName() throws {
        let hub = try LayoutFixture.hub("mini-v3-untied")
        for layout in [Layout.hf, .timm] {
            XCTAssertThrowsError(try KeyLayouts.render(hub, as: layout)) { error in
                guard case let .unrepresentable(l, name, _) = error as? LayoutError else { return XCTFail("\(error)") }
                XCTAssertEqual(l, layout)
                XCTAssertEqual(name, "cls_norm.weight")
                XCTAssertTrue("\(error)".contains("'cls_norm.weight'"), "\(error)")
            }
        }
        XCTAssertNoThrow(try KeyLayouts.render(hub, as: .training))
    }

    func testKeyBiasWithoutItsMaskIsRefusedByName() throws {
        var hub = try LayoutFixture.hub("mini-v3-plain")
        hub.remove("blocks.1.attn.qkv.bias_mask")
        for layout in [Layout.hf, .timm] {
            XCTAssertThrowsError(try KeyLayouts.render(hub, as: layout)) { error in
                guard case let .unrepresentable(l, name, _) = error as? LayoutError else { return XCTFail("\(error)") }
                XCTAssertEqual(l, layout)
                XCTAssertEqual(name, "blocks.1.attn.qkv.bias")
            }
        }
    }

    // MARK: training

    func testTeacherCheckpointCanonicalizesToTheTeacherBackbone() throws {
        let checkpoint = try LayoutFixture.pth("mini-v3-plain-teacher_checkpoint.pth")
        XCTAssertTrue(checkpoint.names.contains { $0.hasPrefix("teacher.ibot_head.") })
        let (store, layout) = try KeyLayouts.canonicalize(checkpoint)
        XCTAssertEqual(layout, .training)
        LayoutFixture.assertSame(store, try LayoutFixture.hub("mini-v3-plain"), ordered: true)
        XCTAssertThrowsError(try KeyLayouts.canonicalize(checkpoint, which: .student)) { error in
            XCTAssertEqual(error as? LayoutError, .branchMissing(requested: .student, available: ["teacher"]))
        }
    }
}

// MARK: helpers

enum V3Fixture {
    /// What a layout without the key bias third and the periods implies for hub weights: the same
    /// store with each key third +0.0, `rope_embed.periods` gone, and `mask_token` gone unless kept.
    static func implied(_ hub: TensorStore, keepingMaskToken: Bool) throws -> TensorStore {
        var pairs: [(String, Tensor)] = []
        for (name, t) in hub.tensors {
            if name == "rope_embed.periods" || (name == "mask_token" && !keepingMaskToken) { continue }
            guard name.hasSuffix(".attn.qkv.bias") else { pairs.append((name, t)); continue }
            var values = t.floats()
            let d = values.count / 3
            for j in d..<(2 * d) { values[j] = 0 }
            pairs.append((name, try Tensor(shape: t.shape, floats: values)))
        }
        return try TensorStore(pairs)
    }

    /// `render` carries each of `carried` (hub names, `dinokit.hub.<name>`) and none of `notCarried`.
    static func assertCarried(_ rendered: TensorStore, _ carried: [String], notCarried: [String], _ label: String,
                              file: StaticString = #filePath, line: UInt = #line) {
        for name in carried {
            XCTAssertNotNil(rendered.metadata["dinokit.hub." + name], "\(label): \(name) not carried", file: file, line: line)
        }
        for name in notCarried {
            XCTAssertNil(rendered.metadata["dinokit.hub." + name], "\(label): \(name) carried", file: file, line: line)
        }
    }

    /// hub → `layout` → safetensors file → hub: the same names in the same order, every bit, and no
    /// carried entry left in the metadata.
    static func assertRoundTrip(_ hub: TensorStore, through layout: Layout, _ label: String,
                                file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = makeTemporaryDirectory("dinokit-layouts-v3")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = "\(dir)/rendered.safetensors"
        try Safetensors.write(try KeyLayouts.render(hub, as: layout), to: path)
        let (back, detected) = try KeyLayouts.canonicalize(try Safetensors.read(path: path))
        XCTAssertEqual(detected, layout, label, file: file, line: line)
        LayoutFixture.assertSame(back, hub, ordered: true, label, file: file, line: line)
        XCTAssertNil(back.metadata["dinokit.mask_token"], label, file: file, line: line)
        XCTAssertFalse(back.metadata.keys.contains { $0.hasPrefix("dinokit.hub.") }, label, file: file, line: line)
    }
}
