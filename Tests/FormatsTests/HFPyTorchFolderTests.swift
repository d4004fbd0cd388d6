import Foundation
import Formats
import TensorStore
import TestSupport
import XCTest

/// HF folders whose weights are `torch.save` pickles (Fixtures/hf-pytorch, made by
/// Scripts/fixtures/hf_pytorch.py from the state dict in transformers' mini-plain-hf, in float16):
/// `pytorch_model.bin` alone and sharded through `pytorch_model.bin.index.json`, the preference
/// between forms, and shard indexes that lie. The index rules are the same for both kinds of
/// shard (HFShardIndex); the safetensors index has its own case in HFFolderTests.
final class HFPyTorchFolderTests: XCTestCase {
    var directory = ""

    override func setUp() { directory = makeTemporaryDirectory("dinokit-hf-pytorch") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    static let single = fixturePath("hf-pytorch/mini-plain")
    static let sharded = fixturePath("hf-pytorch/mini-plain-sharded")
    static let shards = (1...3).map { "pytorch_model-0000\($0)-of-00003.bin" }

    /// transformers' own mini-plain folder in float16: what torch's `.to(torch.float16)` made of
    /// it (the fixture script asserts that), DinoKit's conversion being bit-exact with torch's.
    func reference() throws -> TensorStore {
        try LayoutFixture.hf("mini-plain").converted(to: .f16)
    }

    func testSinglePickleFolderReadsAsTransformersFolder() throws {
        XCTAssertTrue(HFFolder.isHFFolder(path: Self.single))
        XCTAssertEqual(HFWeightsForm.find(in: Self.single), .pytorch)
        let (format, store) = try Checkpoint.read(path: Self.single)
        XCTAssertEqual(format, .hfFolder)
        LayoutFixture.assertSame(store, try reference(), ordered: false)
        XCTAssertEqual(store.metadata["num_heads"], "2")
        XCTAssertEqual(store.metadata["hf.dtype"], "float16")
        // Hub names after canonicalization, as from any other HF folder.
        let hub = try KeyLayouts.canonicalize(store).store
        LayoutFixture.assertSame(hub, try LayoutFixture.hub("mini-plain").converted(to: .f16), ordered: true)
    }

    func testShardedPickleFolderReadsThroughItsIndex() throws {
        XCTAssertTrue(HFFolder.isHFFolder(path: Self.sharded))
        XCTAssertEqual(HFWeightsForm.find(in: Self.sharded), .pytorchShards)
        let (format, store) = try Checkpoint.read(path: Self.sharded)
        XCTAssertEqual(format, .hfFolder)
        LayoutFixture.assertSame(store, try reference(), ordered: false)
        LayoutFixture.assertSame(store, try HFFolder.read(path: Self.single), ordered: false)
    }

    /// transformers' order: model.safetensors, its index, pytorch_model.bin, its index.
    func testSafetensorsArePreferredOverPickles() throws {
        try copy(Self.single, files: ["config.json", "pytorch_model.bin"])
        try FileManager.default.copyItem(atPath: fixturePath("models/mini-plain-hf/model.safetensors"), toPath: "\(directory)/model.safetensors")
        XCTAssertEqual(HFWeightsForm.find(in: directory), .safetensors)
        let store = try HFFolder.read(path: directory)
        XCTAssertEqual(store["layernorm.weight"]?.dtype, .f32, "read from model.safetensors (f32), not the f16 pickle")
        XCTAssertEqual(store.metadata["format"], "pt")

        try FileManager.default.removeItem(atPath: "\(directory)/model.safetensors")
        XCTAssertEqual(HFWeightsForm.find(in: directory), .pytorch)
        XCTAssertEqual(try HFFolder.read(path: directory)["layernorm.weight"]?.dtype, .f16)
    }

    func testFolderWithoutWeightsNamesTheFormsItLooksFor() throws {
        try copy(Self.single, files: ["config.json"])
        XCTAssertFalse(HFFolder.isHFFolder(path: directory))
        XCTAssertThrowsError(try HFFolder.read(path: directory)) { error in
            XCTAssertEqual(error as? HFFolderError, .missingWeights(folder: self.directory))
            XCTAssertTrue("\(error)".contains("pytorch_model.bin"), "\(error)")
        }
        XCTAssertThrowsError(try Checkpoint.read(path: directory)) { error in
            XCTAssertTrue("\(error)".contains("pytorch_model.bin.index.json"), "\(error)")
        }
    }

    // MARK: hostile indexes

    /// The sharded fixture copied into the temporary folder, with `index` (a weight_map of
    /// tensor -> shard, or nil for the fixture's own) written over its index.
    func shardedCopy(index weightMap: [(String, String)]? = nil) throws {
        try copy(Self.sharded, files: ["config.json", "pytorch_model.bin.index.json"] + Self.shards)
        if let weightMap {
            let entries = weightMap.map { "\"\($0.0)\": \"\($0.1)\"" }.joined(separator: ", ")
            try "{\"metadata\": {\"total_size\": 1}, \"weight_map\": {\(entries)}}"
                .write(toFile: "\(directory)/pytorch_model.bin.index.json", atomically: true, encoding: .utf8)
        }
    }

    /// The fixture's weight_map, in its order.
    func fixtureWeightMap() throws -> [(String, String)] {
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.sharded + "/pytorch_model.bin.index.json"))
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let map = try XCTUnwrap(object["weight_map"] as? [String: String])
        return map.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    func assertBadIndex(_ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try HFFolder.read(path: directory), file: file, line: line) { error in
            guard case let .badIndex(path, reason)? = error as? HFFolderError else {
                return XCTFail("untyped or other error: \(error)", file: file, line: line)
            }
            XCTAssertTrue(path.hasSuffix("/pytorch_model.bin.index.json"), path, file: file, line: line)
            XCTAssertTrue(reason.contains(expected), "'\(reason)' says '\(expected)'", file: file, line: line)
            assertOneCleanLine("\(error)", file: file, line: line)
        }
    }

    func testMissingShardIsNamed() throws {
        try shardedCopy()
        try FileManager.default.removeItem(atPath: "\(directory)/\(Self.shards[1])")
        assertBadIndex("shard '\(Self.shards[1])'")
        assertBadIndex("missing")
    }

    func testShardOutsideTheFolderIsRefusedBeforeAnyRead() throws {
        let map = try fixtureWeightMap()
        // A real checkpoint one level up: only the name may refuse it.
        try FileManager.default.copyItem(atPath: "\(Self.sharded)/\(Self.shards[0])", toPath: "\(directory)/outside.bin")
        let folder = directory
        directory += "/hf"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        for escape in ["../outside.bin", "\(folder)/outside.bin", "sub/../../outside.bin", "..", ""] {
            try shardedCopy(index: [(map[0].0, escape)] + map.dropFirst())
            assertBadIndex("is not a plain file name")
            for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
                try FileManager.default.removeItem(atPath: "\(directory)/\(name)")
            }
        }
    }

    func testTensorInTwoShardsIsRefused() throws {
        // Shard 3 replaced by a checkpoint holding shard 2's tensors and its own: every tensor of
        // shard 2 is then in two shards (read in name order, as transformers reads them).
        try shardedCopy()
        let two = try TorchCheckpoint.read(path: "\(Self.sharded)/\(Self.shards[1])").store
        let three = try TorchCheckpoint.read(path: "\(Self.sharded)/\(Self.shards[2])").store
        var both = three
        for (name, t) in two.tensors { try both.insert(t, named: name) }
        try TorchCheckpoint.write(both, to: "\(directory)/\(Self.shards[2])")
        assertBadIndex("is in two shards, \(Self.shards[1]) and \(Self.shards[2])")
    }

    func testIndexNamingATensorItsShardLacksIsRefused() throws {
        try shardedCopy(index: try fixtureWeightMap() + [("encoder.layer.9.norm1.weight", Self.shards[0])])
        assertBadIndex("tensor 'encoder.layer.9.norm1.weight' is not in \(Self.shards[0])")
    }

    func testShardHoldingATensorTheIndexGivesElsewhereIsRefused() throws {
        let map = try fixtureWeightMap()
        let moved = try XCTUnwrap(map.first { $0.1 == Self.shards[1] })
        try shardedCopy(index: map.map { $0.0 == moved.0 ? ($0.0, Self.shards[2]) : $0 })
        assertBadIndex("tensor '\(moved.0)' is in \(Self.shards[1]) but the index says \(Self.shards[2])")
    }

    func testOversizedIndexIsRefusedUnread() throws {
        try shardedCopy()
        let path = "\(directory)/pytorch_model.bin.index.json"
        XCTAssertEqual(truncate(path, 16 << 20 + 1), 0)  // sparse: nothing is written
        assertBadIndex("more than \(16 << 20)")
    }

    // MARK: helpers

    func copy(_ folder: String, files: [String]) throws {
        for name in files { try FileManager.default.copyItem(atPath: "\(folder)/\(name)", toPath: "\(directory)/\(name)") }
    }
}
