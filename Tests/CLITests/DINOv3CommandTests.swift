import Foundation
import TestSupport
import XCTest

/// The commands take DINOv3 weights (Fixtures/golden/tiny-v3-*, made from transformers' and the
/// official dinov3 code): inspect names the family, verify passes the tight bound, forward writes
/// the official key names, convert goes hub -> HF -> hub bit for bit, and what DINOv3 cannot do
/// yet (full fine-tuning; HF without cls_norm) is refused by name before anything is written.
final class DINOv3CommandTests: XCTestCase {
    static let plain = fixturePath("golden/tiny-v3-plain")
    static let untied = fixturePath("golden/tiny-v3-untied")

    var directory = ""

    override func setUp() { directory = makeTemporaryDirectory("dinokit-v3-cli") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    func testInspectNamesTheFamilyAndShape() throws {
        let r = try dinokit(["inspect", Self.plain + "/model.safetensors", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let report = try r.json()
        XCTAssertEqual(report["family"] as? String, "dinov3")
        let architecture = try XCTUnwrap(report["architecture"] as? String)
        for part in ["patch 16", "storage 4", "rope", "masked k bias"] {
            XCTAssertTrue(architecture.contains(part), architecture)
        }
        let v2 = try dinokit(["inspect", fixturePath("golden/tiny-plain/model.safetensors"), "--json"])
        XCTAssertEqual(try v2.json()["family"] as? String, "dinov2")
    }

    func testVerifyPassesTheTightBound() throws {
        for set in [Self.plain, Self.untied, fixturePath("golden/tiny-v3-swiglu")] {
            let r = try dinokit(["verify", set, "--atol", "2e-5", "--rtol", "2e-6", "--json"])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertEqual(try r.json()["pass"] as? Bool, true, set)
        }
    }

    func testForwardWritesTheOfficialOutputNames() throws {
        let out = directory + "/f.npz"
        let r = try dinokit(["forward", "--weights", Self.plain + "/model.safetensors", "--input", Self.plain + "/small.npy",
                             "--out", out, "--intermediate", "0", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let arrays = try XCTUnwrap(try r.json()["arrays"] as? [String: Any])
        XCTAssertEqual(Set(arrays.keys), ["x_norm_clstoken", "x_storage_tokens", "x_norm_patchtokens", "x_prenorm", "forward",
                                          "intermediate.0.patch", "intermediate.0.cls"])
        XCTAssertEqual(arrays["x_storage_tokens"] as? [Int], [1, 4, 32])
    }

    func testConvertToHFAndBackIsBitIdentical() throws {
        let source = Self.plain + "/model.safetensors", folder = directory + "/hf", back = directory + "/back.safetensors"
        var r = try dinokit(["convert", source, folder, "--layout", "hf"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let config = try String(contentsOfFile: folder + "/config.json", encoding: .utf8)
        XCTAssertTrue(config.contains("\"model_type\": \"dinov3_vit\""), config)
        XCTAssertTrue(config.contains("\"key_bias\": false"), config)
        r = try dinokit(["convert", folder, back, "--layout", "hub"])
        XCTAssertEqual(r.status, 0, r.stderr)
        // The same tensors (names, dtypes, shapes) as the source; their bits are compared tensor by
        // tensor in FormatsTests.KeyLayoutsV3Tests. Here: the forward of both gives the same bytes.
        func tensors(_ path: String) throws -> [String] {
            try (dinokit(["inspect", path, "--json"]).json()["tensors"] as? [[String: Any]] ?? []).map { "\($0["name"]!) \($0["shape"]!) \($0["dtype"]!)" }
        }
        XCTAssertEqual(try tensors(source), try tensors(back))
        for (weights, out) in [(source, "a.npz"), (back, "b.npz")] {
            let f = try dinokit(["forward", "--weights", weights, "--input", Self.plain + "/small.npy", "--out", directory + "/" + out])
            XCTAssertEqual(f.status, 0, f.stderr)
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: directory + "/a.npz")),
                       try Data(contentsOf: URL(fileURLWithPath: directory + "/b.npz")))
    }

    func testWhatDINOv3CannotDoYetIsRefusedByNameBeforeWriting() throws {
        let hf = try dinokit(["convert", Self.untied + "/model.safetensors", directory + "/hf", "--layout", "hf"])
        XCTAssertEqual(hf.status, 1)
        XCTAssertTrue(hf.stderr.contains("cls_norm"), hf.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/hf"))

        // SSL training of DINOv3 is out of scope (full fine-tuning is not: FinetuneV3Tests).
        let out = directory + "/ssl"
        let ssl = try dinokit(["train", "ssl", "--weights", Self.plain + "/model.safetensors", "--data",
                               fixturePath("finetune/images"), "--out", out, "--epochs", "1", "--quiet"])
        XCTAssertEqual(ssl.status, 1)
        XCTAssertTrue(ssl.stderr.contains("SSL training (train ssl) supports DINOv2 backbones only"), ssl.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }
}
