import Foundation
import TestSupport
import XCTest

/// HF folders in the forms people download (Fixtures/hf-pytorch: `pytorch_model.bin`, single and
/// sharded) load wherever a folder is accepted, and `convert --max-shard-size` writes shards.
final class HFFolderCommandTests: XCTestCase {
    static let pickleFolders = [fixturePath("hf-pytorch/mini-plain"), fixturePath("hf-pytorch/mini-plain-sharded")]

    var directory = ""

    override func setUp() { directory = makeTemporaryDirectory("dinokit-hf-cli") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    func testPickleFoldersLoadWhereverAFolderIsAccepted() throws {
        for (i, folder) in Self.pickleFolders.enumerated() {
            let inspect = try dinokit(["inspect", folder, "--json"])
            XCTAssertEqual(inspect.status, 0, inspect.stderr)
            let report = try inspect.json()
            XCTAssertEqual(report["format"] as? String, "hf-folder")
            XCTAssertEqual(report["layout"] as? String, "hf")
            XCTAssertEqual((report["tensors"] as? [Any])?.count, 43)

            let converted = try dinokit(["convert", folder, "\(directory)/\(i).safetensors", "--json"])
            XCTAssertEqual(converted.status, 0, converted.stderr)
            XCTAssertEqual(try converted.json()["input_format"] as? String, "hf-folder")

            // The heads come from config.json; no --num-heads.
            let forward = try dinokit(["forward", "--weights", folder, "--input", fixturePath("golden/tiny-plain/small.npy"),
                                       "--out", "\(directory)/\(i).npz"])
            XCTAssertEqual(forward.status, 0, forward.stderr)
            let embed = try dinokit(["embed", "--weights", folder, "--size", "28", "--quiet", "--out", "\(directory)/\(i).npy",
                                     fixturePath("images/china_320x272_q90_420.jpg")])
            XCTAssertEqual(embed.status, 0, embed.stderr)
        }
        // Both forms hold the same tensors: the same converted bytes.
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: "\(directory)/0.safetensors")),
                       try Data(contentsOf: URL(fileURLWithPath: "\(directory)/1.safetensors")))
    }

    func testConvertWritesShardsTransformersCanLoad() throws {
        let out = directory + "/hf/"
        let r = try dinokit(["convert", fixturePath("models/mini-plain.pth"), out, "--num-heads", "2", "--max-shard-size", "20KB", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try r.json()["shards"] as? Int, 3)
        let files = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
        XCTAssertEqual(files, ["config.json", "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                               "model-00003-of-00003.safetensors", "model.safetensors.index.json"])
        // Read back through the index: the hub names and bytes of a one-file conversion.
        for (input, name) in [(out, "sharded"), (fixturePath("models/mini-plain.pth"), "direct")] {
            let back = try dinokit(["convert", input, "\(directory)/\(name).safetensors", "--layout", "hub", "--num-heads", "2"])
            XCTAssertEqual(back.status, 0, back.stderr)
        }
        let sharded = try dinokit(["inspect", "\(directory)/sharded.safetensors", "--json"]).json()
        let direct = try dinokit(["inspect", "\(directory)/direct.safetensors", "--json"]).json()
        XCTAssertEqual((sharded["tensors"] as? [[String: Any]])?.map { $0["name"] as? String },
                       (direct["tensors"] as? [[String: Any]])?.map { $0["name"] as? String })
        let text = try dinokit(["convert", fixturePath("models/mini-plain.pth"), directory + "/hf2/", "--num-heads", "2", "--max-shard-size", "20000"])
        XCTAssertTrue(text.stdout.contains("(hf-folder, hf, 3 shards)"), text.stdout)
    }

    func testInvalidShardSizesAreUsageErrorsNamingTheValue() throws {
        let model = fixturePath("models/mini-plain.pth")
        for size in ["5XB", "0", "1.5", "5 G", "-2MB"] {
            assertUsageError(try dinokit(["convert", model, directory + "/hf/", "--max-shard-size=\(size)"]),
                             contains: "--max-shard-size '\(size)' is not a size")
        }
        assertUsageError(try dinokit(["convert", model, directory + "/w.safetensors", "--max-shard-size", "5MB"]),
                         contains: "--max-shard-size applies only to an HF folder output")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), [], "nothing written")
    }
}
