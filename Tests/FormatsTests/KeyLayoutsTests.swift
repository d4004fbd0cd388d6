import Foundation
import Formats
import TensorStore
import TestSupport
import XCTest

/// Layout detection and translation against Fixtures/models (Scripts/fixtures/layouts.py): the hub
/// `.pth` files are torch.save of the official state dicts; the HF folders were written by
/// transformers' save_pretrained, the timm files are timm's own checkpoint_filter_fn output, the
/// training checkpoints hold the official chunked module trees. Every comparison is bit for bit.
final class KeyLayoutsTests: XCTestCase {
    static let minis = ["mini-plain", "mini-reg", "mini-swiglu"]

    // MARK: detect

    func testDetectsTheLayoutOfEveryFixture() throws {
        for name in Self.minis + ["tiny-plain", "tiny-reg", "tiny-swiglu"] {
            XCTAssertEqual(KeyLayouts.detect(try LayoutFixture.hub(name)), .hub, name)
        }
        for name in Self.minis {
            XCTAssertEqual(KeyLayouts.detect(try LayoutFixture.hf(name)), .hf, name)
            XCTAssertEqual(KeyLayouts.detect(try LayoutFixture.timm(name)), .timm, name)
        }
        XCTAssertEqual(KeyLayouts.detect(try LayoutFixture.pth("mini-plain-teacher_checkpoint.pth")), .training)
        XCTAssertEqual(KeyLayouts.detect(try LayoutFixture.pth("mini-plain-model_0.rank_0.pth")), .training)
        XCTAssertEqual(KeyLayouts.detect(TensorStore()), .unknown)
        XCTAssertEqual(KeyLayouts.detect(try LayoutFixture.floats(["weight": [1], "bias": [2]])), .unknown)
    }

    func testWrappedNamesAreDetectedThroughTheWrapper() throws {
        let hub = try LayoutFixture.hub("mini-plain")
        let wrapped = try TensorStore(hub.tensors.map { ("module." + $0.key, $0.value) })
        XCTAssertEqual(KeyLayouts.detect(wrapped), .hub)
        LayoutFixture.assertSame(try KeyLayouts.canonicalize(wrapped).store, hub, ordered: true)
        // A whole state dict saved as {"model": sd} (or Lightning's {"state_dict": sd}).
        let contained = try TensorStore(hub.tensors.map { ("model." + $0.key, $0.value) })
        XCTAssertEqual(KeyLayouts.detect(contained), .hub)
        LayoutFixture.assertSame(try KeyLayouts.canonicalize(contained).store, hub, ordered: true)
    }

    // MARK: hf

    func testHFFolderCanonicalizesToTheHubCheckpoint() throws {
        for name in Self.minis {
            let (store, layout) = try KeyLayouts.canonicalize(try LayoutFixture.hf(name))
            XCTAssertEqual(layout, .hf)
            LayoutFixture.assertSame(store, try LayoutFixture.hub(name), ordered: true, name)
            XCTAssertEqual(store.metadata["num_heads"], "2", name)
        }
    }

    func testRenderHFEqualsWhatTransformersWrote() throws {
        for name in Self.minis {
            let rendered = try KeyLayouts.render(try LayoutFixture.hub(name), as: .hf)
            LayoutFixture.assertSame(rendered, try LayoutFixture.hf(name), ordered: false, name)
        }
    }

    func testRenderHFFollowsTransformersModuleOrder() throws {
        let names = try KeyLayouts.render(try LayoutFixture.hub("mini-reg"), as: .hf).names
        XCTAssertEqual(Array(names.prefix(12)), [
            "embeddings.cls_token", "embeddings.mask_token", "embeddings.position_embeddings", "embeddings.register_tokens",
            "embeddings.patch_embeddings.projection.weight", "embeddings.patch_embeddings.projection.bias",
            "encoder.layer.0.norm1.weight", "encoder.layer.0.norm1.bias",
            "encoder.layer.0.attention.attention.query.weight", "encoder.layer.0.attention.attention.query.bias",
            "encoder.layer.0.attention.attention.key.weight", "encoder.layer.0.attention.attention.key.bias",
        ])
        XCTAssertEqual(names.suffix(2), ["layernorm.weight", "layernorm.bias"])
    }

    func testHFQKVSplitIsAViewOfTheFusedTensor() throws {
        let hub = try LayoutFixture.hub("mini-plain")
        let rendered = try KeyLayouts.render(hub, as: .hf)
        let qkv = try XCTUnwrap(hub["blocks.1.attn.qkv.weight"])
        let d = qkv.shape[1]
        for (i, part) in ["query", "key", "value"].enumerated() {
            let t = try XCTUnwrap(rendered["encoder.layer.1.attention.attention.\(part).weight"])
            XCTAssertTrue(t.storage === qkv.storage, part)
            XCTAssertEqual(t.offset, qkv.offset + i * d * d, part)
            XCTAssertEqual(t.shape, Shape([d, d]), part)
        }
    }

    func testHubToHFToHubIsBitIdentical() throws {
        for name in Self.minis + ["tiny-reg"] {
            let hub = try LayoutFixture.hub(name)
            let back = try KeyLayouts.canonicalize(try KeyLayouts.render(hub, as: .hf))
            XCTAssertEqual(back.layout, .hf)
            LayoutFixture.assertSame(back.store, hub, ordered: true, name)
        }
    }

    func testHFInMemoryNamesOfTransformers5AreAccepted() throws {
        // transformers 5 names modules q/k/v/o_proj and splits SwiGLU's weights_in into gate/up.
        let hf = try HFFolder.read(path: fixturePath("models/mini-swiglu-hf"))
        var pairs: [(String, Tensor)] = []
        for (name, t) in hf.tensors {
            let renamed = name.replacingOccurrences(of: "attention.attention.query", with: "attention.q_proj")
                .replacingOccurrences(of: "attention.attention.key", with: "attention.k_proj")
                .replacingOccurrences(of: "attention.attention.value", with: "attention.v_proj")
                .replacingOccurrences(of: "attention.output.dense", with: "attention.o_proj")
                .replacingOccurrences(of: "mlp.weights_out", with: "mlp.down_proj")
            if renamed.contains("mlp.weights_in") {
                let half = t.shape[0] / 2
                pairs.append((renamed.replacingOccurrences(of: "weights_in", with: "gate_proj"), try LayoutFixture.slice(t, 0..<half, axis: 0)))
                pairs.append((renamed.replacingOccurrences(of: "weights_in", with: "up_proj"), try LayoutFixture.slice(t, half..<(2 * half), axis: 0)))
            } else {
                pairs.append((renamed, t))
            }
        }
        let (store, layout) = try KeyLayouts.canonicalize(try TensorStore(pairs))
        XCTAssertEqual(layout, .hf)
        LayoutFixture.assertSame(store, try LayoutFixture.hub("mini-swiglu"), ordered: true)
    }

    func testHFWithAMissingProjectionIsRefusedByName() throws {
        var hf = try HFFolder.read(path: fixturePath("models/mini-plain-hf"))
        hf.remove("encoder.layer.1.attention.attention.key.weight")
        XCTAssertThrowsError(try KeyLayouts.canonicalize(hf)) { error in
            XCTAssertEqual(error as? LayoutError, .missingTensor(name: "encoder.layer.1.attention.attention.key.weight",
                                                                 needed: "blocks.1.attn.qkv.weight"))
        }
    }

    // MARK: timm

    func testTimmWithoutRegistersCanonicalizesToHubWithoutMaskToken() throws {
        for name in ["mini-plain", "mini-swiglu"] {
            let (store, layout) = try KeyLayouts.canonicalize(try LayoutFixture.timm(name))
            XCTAssertEqual(layout, .timm)
            var hub = try LayoutFixture.hub(name)
            hub.remove("mask_token")
            LayoutFixture.assertSame(store, hub, ordered: true, name)
            XCTAssertEqual(store.metadata["dinokit.mask_token"], "absent", name)
        }
    }

    /// The documented rule for timm register files without DinoKit's metadata: cls_token = timm's
    /// (folded) cls_token, pos_embed[:, 0] = 0. Layouts.py asserts with transformers that this gives
    /// identical outputs at native and doubled input size.
    func testTimmRegisterModelUnfoldsWithAZeroPositionRow() throws {
        let timm = try LayoutFixture.timm("mini-reg")
        let (store, layout) = try KeyLayouts.canonicalize(timm)
        XCTAssertEqual(layout, .timm)
        XCTAssertEqual(store.metadata["dinokit.cls_pos_fold"], "zero-row")
        XCTAssertEqual(store.metadata["dinokit.mask_token"], "absent")
        var hub = try LayoutFixture.hub("mini-reg")
        XCTAssertEqual(store.names, hub.names.filter { $0 != "mask_token" })
        XCTAssertTrue(try XCTUnwrap(store["cls_token"]).bitwiseEqual(try XCTUnwrap(timm["cls_token"])))
        XCTAssertTrue(try XCTUnwrap(store["register_tokens"]).bitwiseEqual(try XCTUnwrap(timm["reg_token"])))
        let pos = try XCTUnwrap(store["pos_embed"]), hubPos = try XCTUnwrap(hub["pos_embed"])
        XCTAssertEqual(pos.shape, hubPos.shape)
        XCTAssertTrue(try LayoutFixture.slice(pos, 0..<1, axis: 1).floats().allSatisfy { $0.bitPattern == 0 })
        let n = hubPos.shape[1]
        XCTAssertTrue(try LayoutFixture.slice(pos, 1..<n, axis: 1).bitwiseEqual(try LayoutFixture.slice(hubPos, 1..<n, axis: 1)))
        for name in ["cls_token", "pos_embed", "mask_token"] { hub.remove(name) }
        var rest = store
        for name in ["cls_token", "pos_embed"] { rest.remove(name) }
        LayoutFixture.assertSame(rest, hub, ordered: true)
    }

    func testRenderTimmEqualsTimmsConverter() throws {
        for name in Self.minis {
            let rendered = try KeyLayouts.render(try LayoutFixture.hub(name), as: .timm)
            LayoutFixture.assertSame(rendered, try LayoutFixture.timm(name), ordered: false, name)
        }
    }

    func testRenderTimmFoldsBFloat16AsTorchDoes() throws {
        let hub = try LayoutFixture.hub("mini-reg").converted(to: .bf16)
        let rendered = try KeyLayouts.render(hub, as: .timm)
        let timm = try Safetensors.read(path: fixturePath("models/mini-reg-timm-bf16.safetensors"))
        LayoutFixture.assertSame(rendered, timm, ordered: false)
        LayoutFixture.assertSame(try KeyLayouts.canonicalize(rendered).store, hub, ordered: true)
    }

    func testRenderTimmFollowsTimmModuleOrder() throws {
        let names = try KeyLayouts.render(try LayoutFixture.hub("mini-reg"), as: .timm).names
        XCTAssertEqual(Array(names.prefix(4)), ["cls_token", "reg_token", "pos_embed", "patch_embed.proj.weight"])
        let swiglu = try KeyLayouts.render(try LayoutFixture.hub("mini-swiglu"), as: .timm).names
        XCTAssertTrue(swiglu.contains("blocks.0.mlp.fc1.weight") && !swiglu.contains { $0.contains("w12") })
    }

    func testHubToTimmToHubIsBitIdenticalThroughASafetensorsFile() throws {
        let dir = makeTemporaryDirectory("dinokit-layouts")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for name in Self.minis + ["tiny-reg"] {
            let hub = try LayoutFixture.hub(name)
            let path = "\(dir)/\(name)-timm.safetensors"
            try Safetensors.write(try KeyLayouts.render(hub, as: .timm), to: path)
            let (back, layout) = try KeyLayouts.canonicalize(try Safetensors.read(path: path))
            XCTAssertEqual(layout, .timm)
            LayoutFixture.assertSame(back, hub, ordered: true, name)
            XCTAssertNil(back.metadata["dinokit.mask_token"], name)
            if name.contains("reg") { XCTAssertEqual(back.metadata["dinokit.cls_pos_fold"], "restored", name) }
            XCTAssertFalse(back.metadata.keys.contains { $0.hasPrefix("dinokit.hub.") }, name)
        }
    }

    func testTimmMetadataThatNoLongerMatchesIsIgnored() throws {
        var rendered = try KeyLayouts.render(try LayoutFixture.hub("mini-reg"), as: .timm)
        // Weights changed after DinoKit wrote the file (e.g. fine-tuned in timm, header kept).
        rendered["cls_token"] = try LayoutFixture.slice(try XCTUnwrap(rendered["reg_token"]), 0..<1, axis: 1)
        let store = try KeyLayouts.canonicalize(rendered).store
        XCTAssertEqual(store.metadata["dinokit.cls_pos_fold"], "zero-row")
        XCTAssertTrue(try XCTUnwrap(store["cls_token"]).bitwiseEqual(try XCTUnwrap(rendered["cls_token"])))
    }

    // MARK: training

    func testTeacherCheckpointCanonicalizesToTheTeacherBackbone() throws {
        let (store, layout) = try KeyLayouts.canonicalize(try LayoutFixture.pth("mini-plain-teacher_checkpoint.pth"))
        XCTAssertEqual(layout, .training)
        LayoutFixture.assertSame(store, try LayoutFixture.hub("mini-plain"), ordered: true)
    }

    func testPeriodicCheckpointGivesTeacherByDefaultAndStudentOnRequest() throws {
        let checkpoint = try LayoutFixture.pth("mini-plain-model_0.rank_0.pth")
        let teacher = try KeyLayouts.canonicalize(checkpoint).store
        LayoutFixture.assertSame(teacher, try LayoutFixture.hub("mini-plain"), ordered: true, "teacher")
        let student = try KeyLayouts.canonicalize(checkpoint, which: .student).store
        LayoutFixture.assertSame(student, try LayoutFixture.pth("mini-plain-student.pth"), ordered: true, "student")
        XCTAssertFalse(try XCTUnwrap(student["blocks.0.attn.qkv.weight"]).bitwiseEqual(try XCTUnwrap(teacher["blocks.0.attn.qkv.weight"])))
        XCTAssertFalse(teacher.metadata.keys.contains { $0.hasPrefix("optimizer.") })
    }

    func testTeacherCheckpointHasNoStudent() throws {
        XCTAssertThrowsError(try KeyLayouts.canonicalize(try LayoutFixture.pth("mini-plain-teacher_checkpoint.pth"), which: .student)) { error in
            XCTAssertEqual(error as? LayoutError, .branchMissing(requested: .student, available: ["teacher"]))
        }
    }

    func testRenderTrainingChunkedMatchesTheOfficialChunkedNames() throws {
        let hub = try LayoutFixture.hub("mini-plain")
        let rendered = try KeyLayouts.render(hub, as: .training, chunks: 2)
        let official = try LayoutFixture.pth("mini-plain-teacher_checkpoint.pth")
        let backbone = try TensorStore(official.tensors.filter { $0.key.hasPrefix("teacher.backbone.") }.map { ($0.key, $0.value) })
        LayoutFixture.assertSame(rendered, backbone, ordered: true)
        XCTAssertTrue(rendered.names.contains("teacher.backbone.blocks.1.1.norm1.weight"))
        LayoutFixture.assertSame(try KeyLayouts.canonicalize(rendered).store, hub, ordered: true)
        let plain = try KeyLayouts.render(hub, as: .training)
        XCTAssertTrue(plain.names.contains("teacher.backbone.blocks.1.norm1.weight"))
        LayoutFixture.assertSame(try KeyLayouts.canonicalize(plain).store, hub, ordered: true)
    }

    func testBareChunkedBackboneIsCanonicalized() throws {
        let official = try LayoutFixture.pth("mini-plain-teacher_checkpoint.pth")
        let bare = try TensorStore(official.tensors.filter { $0.key.hasPrefix("teacher.backbone.") }
            .map { (String($0.key.dropFirst("teacher.backbone.".count)), $0.value) })
        XCTAssertEqual(KeyLayouts.detect(bare), .training)
        LayoutFixture.assertSame(try KeyLayouts.canonicalize(bare).store, try LayoutFixture.hub("mini-plain"), ordered: true)
    }

    func testRenderUnknownAndBadChunksAreRefused() throws {
        let hub = try LayoutFixture.hub("mini-plain")
        XCTAssertThrowsError(try KeyLayouts.render(hub, as: .unknown))
        XCTAssertThrowsError(try KeyLayouts.render(hub, as: .training, chunks: 3))
        XCTAssertThrowsError(try KeyLayouts.render(hub, as: .training, chunks: -1))
        XCTAssertThrowsError(try KeyLayouts.canonicalize(try LayoutFixture.floats(["weight": [1]]))) { error in
            guard case .unrecognized = error as? LayoutError else { return XCTFail("\(error)") }
        }
    }

    func testCanonicalHubOrderIsTheOfficialStateDictOrder() throws {
        for name in Self.minis + ["tiny-swiglu"] {
            let hub = try LayoutFixture.hub(name)
            let shuffled = try TensorStore(hub.tensors.reversed().map { ($0.key, $0.value) })
            XCTAssertEqual(try KeyLayouts.canonicalize(shuffled).store.names, hub.names, name)
        }
    }
}

// MARK: helpers shared by the layout and HF folder tests

enum LayoutFixture {
    static func pth(_ name: String) throws -> TensorStore {
        try TorchCheckpoint.read(path: fixturePath("models/\(name)")).store
    }

    /// A hub-layout `.pth` (`mini-plain` -> Fixtures/models/mini-plain.pth).
    static func hub(_ name: String) throws -> TensorStore { try LayoutFixture.pth("\(name).pth") }

    static func timm(_ name: String) throws -> TensorStore {
        try Safetensors.read(path: fixturePath("models/\(name)-timm.safetensors"))
    }

    static func hf(_ name: String) throws -> TensorStore {
        try HFFolder.read(path: fixturePath("models/\(name)-hf"))
    }

    static func floats(_ values: [String: [Float]]) throws -> TensorStore {
        try TensorStore(values.sorted { $0.key < $1.key }.map { ($0.key, try Tensor(shape: [$0.value.count], floats: $0.value)) })
    }

    /// Entries `range` of `axis` (a view).
    static func slice(_ t: Tensor, _ range: Range<Int>, axis: Int) throws -> Tensor {
        var dims = t.shape.dims
        dims[axis] = range.count
        return try Tensor(storage: t.storage, dtype: t.dtype, shape: Shape(dims), strides: t.strides,
                          offset: t.offset + range.lowerBound * t.strides[axis])
    }

    /// Same names (in the same order when `ordered`), and every tensor equal in dtype, shape and bits.
    static func assertSame(_ got: TensorStore, _ want: TensorStore, ordered: Bool, _ label: String = "",
                           file: StaticString = #filePath, line: UInt = #line) {
        if ordered {
            XCTAssertEqual(got.names, want.names, "\(label): names or order differ", file: file, line: line)
        } else {
            XCTAssertEqual(Set(got.names), Set(want.names), "\(label): names differ", file: file, line: line)
        }
        for (name, w) in want.tensors {
            guard let g = got[name] else { continue }
            XCTAssertEqual(g.dtype, w.dtype, "\(label): \(name) dtype", file: file, line: line)
            XCTAssertEqual(g.shape, w.shape, "\(label): \(name) shape", file: file, line: line)
            XCTAssertTrue(g.bitwiseEqual(w), "\(label): \(name) values differ", file: file, line: line)
        }
    }
}
