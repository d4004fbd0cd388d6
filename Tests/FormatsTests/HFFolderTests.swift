import Foundation
import Formats
import TensorStore
import TestSupport
import XCTest

/// HF folders: the ones transformers' save_pretrained wrote (Fixtures/models/mini-*-hf) read
/// with their config, and DinoKit-written folders equal to them tensor for tensor and in every
/// config field DinoKit writes. (Scripts/dinokit_ref/interop_hf.py checks DinoKit's folders with
/// transformers' from_pretrained itself.)
final class HFFolderTests: XCTestCase {
    /// Config fields DinoKit writes, compared with transformers' own values.
    static let configFields = [
        "model_type", "architectures", "hidden_size", "num_hidden_layers", "num_attention_heads", "mlp_ratio",
        "image_size", "patch_size", "num_channels", "layer_norm_eps", "hidden_act", "layerscale_value",
        "use_swiglu_ffn", "qkv_bias", "num_register_tokens", "use_mask_token", "hidden_dropout_prob",
        "attention_probs_dropout_prob", "drop_path_rate", "apply_layernorm", "reshape_hidden_states", "dtype",
    ]

    var directory = ""

    override func setUp() {
        directory = makeTemporaryDirectory("dinokit-hf")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func testReadsTransformersFolderWithItsConfig() throws {
        let path = fixturePath("models/mini-reg-hf")
        XCTAssertTrue(HFFolder.isHFFolder(path: path))
        let store = try HFFolder.read(path: path)
        XCTAssertEqual(store.metadata["num_heads"], "2")
        XCTAssertEqual(store.metadata["hf.model_type"], "dinov2_with_registers")
        XCTAssertEqual(store.metadata["hf.architectures"], "Dinov2WithRegistersModel")
        XCTAssertEqual(store.metadata["hf.layer_norm_eps"], "1e-06")
        XCTAssertEqual(store.metadata["format"], "pt")
        XCTAssertNotNil(store["encoder.layer.1.attention.attention.value.bias"])
    }

    func testWrittenFolderEqualsTheOneTransformersWrote() throws {
        for name in KeyLayoutsTests.minis {
            var hub = try LayoutFixture.hub(name)
            hub.metadata["num_heads"] = "2"  // width 16: not derivable from the weights
            let out = "\(directory)/\(name)-hf"
            try HFFolder.write(hub: hub, to: out)
            XCTAssertTrue(HFFolder.isHFFolder(path: out), name)
            let mine = try HFFolder.read(path: out), theirs = try LayoutFixture.hf(name)
            LayoutFixture.assertSame(mine, theirs, ordered: false, name)
            // Both files list tensors in the safetensors reference writer's order.
            XCTAssertEqual(mine.names, theirs.names, name)
            for field in Self.configFields {
                XCTAssertEqual(mine.metadata["hf." + field], theirs.metadata["hf." + field], "\(name): \(field)")
            }
            XCTAssertEqual(mine.metadata["format"], "pt", name)
            let back = try KeyLayouts.canonicalize(mine).store
            LayoutFixture.assertSame(back, try LayoutFixture.hub(name), ordered: true, name)
        }
    }

    /// The output rule (OutputPath): the folder itself is created, its parent must exist.
    func testWriteCreatesTheFolderNotItsParentsAndReplacesFiles() throws {
        var hub = try LayoutFixture.hub("mini-plain")
        hub.metadata["num_heads"] = "2"
        XCTAssertThrowsError(try HFFolder.write(hub: hub, to: "\(directory)/a/b/c")) { error in
            XCTAssertEqual(error as? OutputPath.Problem, .missingFolder(output: "\(directory)/a/b/c", folder: "\(directory)/a/b"))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(directory)/a"))
        let out = "\(directory)/c"
        try HFFolder.write(hub: hub, to: out)
        try HFFolder.write(hub: hub, to: out + "/")
        let listing = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
        XCTAssertEqual(listing, ["config.json", "model.safetensors"], "no temporary files left behind")
    }

    /// Issue 15: config values that contradict the tensors were silently ignored.
    func testConfigContradictingTheTensorsIsRefusedNamingTheField() throws {
        let source = fixturePath("models/mini-plain-hf")
        try FileManager.default.copyItem(atPath: source + "/model.safetensors", toPath: "\(directory)/model.safetensors")
        let original = try String(contentsOfFile: source + "/config.json", encoding: .utf8)
        let cases: [(String, String, String)] = [
            ("\"hidden_size\": 16", "\"hidden_size\": 1000000000", "hidden_size is 1000000000 but the tensors say 16"),
            ("\"num_hidden_layers\": 2", "\"num_hidden_layers\": -3", "num_hidden_layers is -3, not a non-negative integer"),
            ("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 7", "num_hidden_layers is 7 but the tensors say 2"),
            ("\"patch_size\": 14", "\"patch_size\": 16", "patch_size is 16 but the tensors say 14"),
            ("\"num_attention_heads\": 2", "\"num_attention_heads\": 3", "num_attention_heads is 3 but the tensors say width 16"),
        ]
        for (from, to, message) in cases {
            XCTAssertTrue(original.contains(from), from)
            try original.replacingOccurrences(of: from, with: to).write(toFile: "\(directory)/config.json", atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try HFFolder.read(path: directory), to) { error in
                XCTAssertTrue("\(error)".contains(message), "\(error)")
            }
        }
        try original.write(toFile: "\(directory)/config.json", atomically: true, encoding: .utf8)
        XCTAssertNoThrow(try HFFolder.read(path: directory))
    }

    func testWriteAcceptsOtherLayouts() throws {
        var timm = try LayoutFixture.timm("mini-swiglu")
        timm.metadata["num_heads"] = "2"
        let out = "\(directory)/from-timm"
        try HFFolder.write(hub: timm, to: out)
        let store = try HFFolder.read(path: out)
        // timm has no mask token: Dinov2Model is told not to create one.
        XCTAssertEqual(store.metadata["hf.use_mask_token"], "false")
        XCTAssertNil(store["embeddings.mask_token"])
        var want = try LayoutFixture.hf("mini-swiglu")
        want.remove("embeddings.mask_token")
        LayoutFixture.assertSame(store, want, ordered: false)
    }

    func testRegisterModelWithoutMaskTokenGetsZeros() throws {
        var timm = try LayoutFixture.timm("mini-reg")
        timm.metadata["num_heads"] = "2"
        let out = "\(directory)/reg-from-timm"
        try HFFolder.write(hub: timm, to: out)
        let store = try HFFolder.read(path: out)
        let mask = try XCTUnwrap(store["embeddings.mask_token"])
        XCTAssertEqual(mask.shape, Shape([1, 16]))
        XCTAssertTrue(mask.floats().allSatisfy { $0.bitPattern == 0 })
        XCTAssertEqual(store.metadata["dinokit.mask_token"], "zeros (absent in the source)")
    }

    func testWriteNeedsTheNumberOfHeads() throws {
        let hub = try LayoutFixture.hub("mini-plain")
        XCTAssertThrowsError(try HFFolder.write(hub: hub, to: "\(directory)/x")) { error in
            XCTAssertEqual(error as? HFFolderError, .unknownHeads(embedDim: 16))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(directory)/x"))
    }

    func testWriteRefusesTensorsOutsideTheBackbone() throws {
        var hub = try LayoutFixture.hub("mini-plain")
        hub.metadata["num_heads"] = "2"
        try hub.insert(try Tensor(shape: [2], floats: [1, 2]), named: "head.bias")
        XCTAssertThrowsError(try HFFolder.write(hub: hub, to: "\(directory)/x")) { error in
            guard case .unsupported = error as? HFFolderError else { return XCTFail("\(error)") }
        }
    }

    func testTinyModelsUseHeadDimensionFromMetadataOrRule() throws {
        // tiny models: width 32, 2 heads (metadata); a width divisible by 64 would default to D/64.
        var hub = try LayoutFixture.hub("tiny-swiglu")
        hub.metadata["num_heads"] = "2"
        try HFFolder.write(hub: hub, to: "\(directory)/tiny")
        let store = try HFFolder.read(path: "\(directory)/tiny")
        XCTAssertEqual(store.metadata["hf.num_attention_heads"], "2")
        XCTAssertEqual(store.metadata["hf.image_size"], "224")
        XCTAssertEqual(store.metadata["hf.mlp_ratio"], "4")
        LayoutFixture.assertSame(try KeyLayouts.canonicalize(store).store, try LayoutFixture.hub("tiny-swiglu"), ordered: true)
    }

    func testShardedFolderIsReadThroughItsIndex() throws {
        let hf = try LayoutFixture.hf("mini-plain")
        let names = hf.names
        let half = names.count / 2
        let shards = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
        for (i, part) in [names[..<half], names[half...]].enumerated() {
            try Safetensors.write(try TensorStore(part.compactMap { n in hf[n].map { (n, $0) } }, metadata: ["format": "pt"]), to: "\(directory)/\(shards[i])")
        }
        let map = names.enumerated().map { "\"\($1)\": \"\(shards[$0 < half ? 0 : 1])\"" }.joined(separator: ", ")
        try "{\"metadata\": {\"total_size\": 1}, \"weight_map\": {\(map)}}".write(toFile: "\(directory)/model.safetensors.index.json", atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(atPath: fixturePath("models/mini-plain-hf/config.json"), toPath: "\(directory)/config.json")
        XCTAssertTrue(HFFolder.isHFFolder(path: directory))
        LayoutFixture.assertSame(try HFFolder.read(path: directory), hf, ordered: false)

        try "{\"weight_map\": {\"\(names[0])\": \"../elsewhere.safetensors\"}}".write(toFile: "\(directory)/model.safetensors.index.json", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try HFFolder.read(path: directory)) { error in
            guard case .badIndex = error as? HFFolderError else { return XCTFail("\(error)") }
        }
    }

    func testBadConfigIsRefusedWithItsReason() throws {
        try FileManager.default.copyItem(atPath: fixturePath("models/mini-plain-hf/model.safetensors"), toPath: "\(directory)/model.safetensors")
        for (text, reason) in [("{\"num_attention_heads\": 2, \"num_attention_heads\": 3}", "duplicate key 'num_attention_heads'"),
                               ("{\"num_attention_heads\": \"two\"}", "num_attention_heads 'two' is not a positive integer"),
                               ("[1, 2]", "expected '{', found '['")] {
            try text.write(toFile: "\(directory)/config.json", atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try HFFolder.read(path: directory)) { error in
                guard case let .badConfig(_, r) = error as? HFFolderError else { return XCTFail("\(error)") }
                XCTAssertTrue(r.hasPrefix(reason), r)
            }
        }
    }

    func testNotAFolder() {
        XCTAssertFalse(HFFolder.isHFFolder(path: fixturePath("models/mini-plain.pth")))
        XCTAssertFalse(HFFolder.isHFFolder(path: directory))
        XCTAssertThrowsError(try HFFolder.read(path: fixturePath("models/mini-plain.pth"))) { error in
            XCTAssertEqual(error as? HFFolderError, .notAFolder(path: fixturePath("models/mini-plain.pth")))
        }
    }
}
