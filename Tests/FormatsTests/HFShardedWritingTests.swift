import Foundation
import Formats
import TensorStore
import TestSupport
import XCTest

/// Writing HF folders in shards (`HFFolder.write(maxShardSize:)`, `HFShardPlan`): save_pretrained's
/// split, bit-identical round trips, the index, rewriting a folder in another form, and a failed
/// write that leaves the folder as it was. (Scripts/interop-check has transformers load a sharded
/// DinoKit folder and compares the split with save_pretrained's own.)
final class HFShardedWritingTests: XCTestCase {
    var directory = ""

    override func setUp() { directory = makeTemporaryDirectory("dinokit-hf-shards") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    func hub(_ name: String) throws -> TensorStore {
        var hub = try LayoutFixture.hub(name)
        hub.metadata["num_heads"] = "2"  // width 16 / 32: not derivable from the weights
        return hub
    }

    func listing(_ folder: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
    }

    /// huggingface_hub's `split_state_dict_into_shards_factory` (these groups are what it returns
    /// for the same sizes): fill in order, start a new shard when the next tensor would pass the
    /// limit, a tensor over the limit alone (placed before the shard being filled).
    func testPlanSplitsAsSavePretrained() throws {
        func store(_ sizes: [Int]) throws -> TensorStore {
            try TensorStore(sizes.enumerated().map { ("t\($0)", try Tensor(shape: [$1], floats: [Float](repeating: 0, count: $1))) })
        }
        func groups(_ sizes: [Int], _ limit: Int?) throws -> [[String]] {
            HFShardPlan(try store(sizes), maxShardSize: limit).shards.map(\.names)
        }
        // Sizes in floats, limits in bytes (4 per float).
        XCTAssertEqual(try groups([1, 1, 1], nil), [["t0", "t1", "t2"]])
        XCTAssertEqual(try groups([1, 1, 1], 12), [["t0", "t1", "t2"]], "exactly the limit fits")
        XCTAssertEqual(try groups([1, 1, 1], 8), [["t0", "t1"], ["t2"]])
        XCTAssertEqual(try groups([1, 10, 1], 20), [["t1"], ["t0", "t2"]], "an oversized tensor alone, first")
        XCTAssertEqual(try groups([2, 2, 10, 2], 16), [["t2"], ["t0", "t1"], ["t3"]])
        XCTAssertEqual(try groups([5, 5], 4), [["t0"], ["t1"]])

        let one = HFShardPlan(try store([1, 2]), maxShardSize: 1 << 20)
        XCTAssertEqual(one.shards.map(\.file), ["model.safetensors"])
        XCTAssertFalse(one.isSharded)
        let three = HFShardPlan(try store([1, 2, 3]), maxShardSize: 4)
        XCTAssertEqual(three.shards.map(\.file), ["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                                                   "model-00003-of-00003.safetensors"])
        XCTAssertEqual(three.totalSize, 24)
    }

    func testSizesAreReadAsSavePretrainedReadsThem() {
        let good: [(String, Int)] = [
            ("5GB", 5_000_000_000), ("500MB", 500_000_000), ("2MB", 2_000_000), ("10KB", 10_000), ("1TB", 1_000_000_000_000),
            ("2mb", 2_000_000), ("1.5GB", 1_500_000_000), (" 3 MB ", 3_000_000), ("1MiB", 1 << 20), ("2GiB", 2 << 30),
            ("0.5KiB", 512), ("2000000", 2_000_000), ("1", 1),
        ]
        for (text, bytes) in good { XCTAssertEqual(HFShardPlan.parseSize(text), bytes, text) }
        for text in ["", "0", "0MB", "-5MB", "5XB", "5 G", "MB", "1.5", "1.MB", ".5MB", "5e9", "99999999999TB", "５MB", "5MB5"] {
            XCTAssertNil(HFShardPlan.parseSize(text), text)
        }
    }

    /// Every layout fixture, split small: the same tensors, bit for bit, as the one-file folder,
    /// every shard holding what the index says, the index's total the sum of the tensor bytes.
    func testShardedFolderRoundTripsBitIdentically() throws {
        for name in KeyLayoutsTests.minis {
            let single = "\(directory)/\(name)-single", sharded = "\(directory)/\(name)-sharded"
            XCTAssertEqual(try HFFolder.write(hub: try hub(name), to: single), ["model.safetensors"])
            let files = try HFFolder.write(hub: try hub(name), to: sharded, maxShardSize: 20_000)
            XCTAssertGreaterThan(files.count, 1, name)
            XCTAssertEqual(try listing(sharded), (files + ["config.json", "model.safetensors.index.json"]).sorted(), name)
            XCTAssertEqual(HFWeightsForm.find(in: sharded), .safetensorsShards)

            let want = try HFFolder.read(path: single), got = try HFFolder.read(path: sharded)
            LayoutFixture.assertSame(got, want, ordered: false, name)
            XCTAssertEqual(got.metadata, want.metadata, name)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: "\(sharded)/config.json")),
                           try Data(contentsOf: URL(fileURLWithPath: "\(single)/config.json")), name)
            LayoutFixture.assertSame(try KeyLayouts.canonicalize(got).store, try LayoutFixture.hub(name), ordered: true, name)

            let index = try XCTUnwrap(try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: "\(sharded)/model.safetensors.index.json"))) as? [String: Any])
            XCTAssertEqual(Set(index.keys), ["metadata", "weight_map"])
            XCTAssertEqual((index["metadata"] as? [String: Int])?["total_size"], want.byteCount, name)
            let map = try XCTUnwrap(index["weight_map"] as? [String: String])
            XCTAssertEqual(Set(map.keys), Set(want.names), name)
            for file in files {
                let shard = try Safetensors.read(path: "\(sharded)/\(file)")
                XCTAssertEqual(Set(shard.names), Set(map.filter { $0.value == file }.keys), "\(name): \(file)")
                XCTAssertEqual(shard.metadata["format"], "pt", "\(name): \(file)")
                XCTAssertLessThanOrEqual(shard.byteCount > 20_000 ? shard.count : 0, 1, "\(name): only a lone tensor passes the limit")
            }
        }
    }

    /// The index text is what transformers writes (json.dumps(indent=2, sort_keys=True) and a
    /// newline): equal to the index of the pickle fixture, which huggingface_hub split and
    /// transformers' code wrote for the same float16 tensors, but for the file names.
    func testIndexIsTheTextTransformersWrites() throws {
        let store = try LayoutFixture.hf("mini-plain").converted(to: .f16)
        let files = try HFFolder.write(hub: store, to: directory + "/out", maxShardSize: 12_000)
        XCTAssertEqual(files.count, 3)
        let mine = try String(contentsOfFile: directory + "/out/model.safetensors.index.json", encoding: .utf8)
        let theirs = try String(contentsOfFile: fixturePath("hf-pytorch/mini-plain-sharded/pytorch_model.bin.index.json"), encoding: .utf8)
        XCTAssertEqual(mine, theirs.replacingOccurrences(of: "pytorch_model-", with: "model-")
            .replacingOccurrences(of: ".bin\"", with: ".safetensors\""))
    }

    /// A folder written again in another form keeps one form: no `model.safetensors` hides new
    /// shards, no index or shards of another count stay beside the new weights; other files stay.
    func testRewritingAFolderRemovesWeightsOfTheEarlierForm() throws {
        let out = directory + "/hf"
        let want = try { () -> TensorStore in
            try HFFolder.write(hub: try hub("mini-plain"), to: directory + "/reference")
            return try HFFolder.read(path: directory + "/reference")
        }()
        try HFFolder.write(hub: try hub("mini-plain"), to: out)
        try "notes".write(toFile: out + "/README.md", atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(atPath: fixturePath("hf-pytorch/mini-plain/pytorch_model.bin"), toPath: out + "/pytorch_model.bin")

        let three = try HFFolder.write(hub: try hub("mini-plain"), to: out, maxShardSize: 20_000)
        XCTAssertEqual(three.count, 3)
        XCTAssertEqual(try listing(out), (three + ["README.md", "config.json", "model.safetensors.index.json", "pytorch_model.bin"]).sorted())
        LayoutFixture.assertSame(try HFFolder.read(path: out), want, ordered: false)

        let two = try HFFolder.write(hub: try hub("mini-plain"), to: out, maxShardSize: 40_000)
        XCTAssertEqual(two, ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"])
        XCTAssertEqual(try listing(out), (two + ["README.md", "config.json", "model.safetensors.index.json", "pytorch_model.bin"]).sorted())
        LayoutFixture.assertSame(try HFFolder.read(path: out), want, ordered: false)

        try HFFolder.write(hub: try hub("mini-plain"), to: out)
        XCTAssertEqual(try listing(out), ["README.md", "config.json", "model.safetensors", "pytorch_model.bin"])
        LayoutFixture.assertSame(try HFFolder.read(path: out), want, ordered: false)
    }

    /// Every file is synced as a temporary before any is renamed: a write that fails on its third
    /// shard (the file-size limit makes the disk "full" for it) leaves an existing folder byte for
    /// byte as it was, and removes a folder it created, without temporaries.
    func testFailedShardedWriteLeavesTheFolderAsItWas() throws {
        // tiny-plain in one-tensor shards: cls_token and mask_token (128 bytes each), then the
        // 175 KB position table, past a 100 KB file-size limit.
        let store = try hub("tiny-plain")
        let out = directory + "/hf"
        try HFFolder.write(hub: store, to: out)
        let before = try listing(out).map { ($0, try Data(contentsOf: URL(fileURLWithPath: "\(out)/\($0)"))) }

        for target in [out, directory + "/new"] {
            XCTAssertThrowsError(try withFileSizeLimit(100_000) { try HFFolder.write(hub: store, to: target, maxShardSize: 1) }) { error in
                XCTAssertTrue("\(error)".contains("model-00003-of-"), "the failing shard is named: \(error)")
                XCTAssertFalse("\(error)".contains(".tmp-"), "no temporary is named: \(error)")
            }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/new"), "a folder the write created is removed")
        let after = try listing(out).map { ($0, try Data(contentsOf: URL(fileURLWithPath: "\(out)/\($0)"))) }
        XCTAssertEqual(after.map(\.0), before.map(\.0), "no shard and no temporary left")
        XCTAssertTrue(zip(after, before).allSatisfy { $0.1 == $1.1 }, "the old files are untouched")
    }

    /// Runs `body` with RLIMIT_FSIZE at `bytes` (writes past it fail with EFBIG instead of
    /// raising SIGXFSZ, which is ignored meanwhile), then restores both.
    func withFileSizeLimit<T>(_ bytes: Int, _ body: () throws -> T) throws -> T {
        let resource = __rlimit_resource_t(RLIMIT_FSIZE.rawValue)
        var old = rlimit()
        XCTAssertEqual(getrlimit(resource, &old), 0)
        let oldHandler = signal(SIGXFSZ, SIG_IGN)
        var limited = old
        limited.rlim_cur = rlim_t(bytes)
        XCTAssertEqual(setrlimit(resource, &limited), 0)
        defer {
            setrlimit(resource, &old)
            signal(SIGXFSZ, oldHandler)
        }
        return try body()
    }
}
