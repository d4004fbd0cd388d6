import DINOv2
import Foundation
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Issue 15: a golden manifest is untrusted input. Its paths stay inside its folder (the rule ONNX
/// external data follows), its synthetic inputs are bounded, and a malformed one is a one-line
/// error naming the field (it used to print Swift's DecodingError debug text).
final class GoldenManifestTests: XCTestCase {
    var root = ""
    var dir = ""

    override func setUpWithError() throws {
        root = makeTemporaryDirectory("golden-manifest")
        dir = root + "/set"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for name in ["in.npy", "out.npy", "model.safetensors"] {
            FileManager.default.createFile(atPath: dir + "/" + name, contents: Data())
        }
        FileManager.default.createFile(atPath: root + "/secret.npy", contents: Data())
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    private func load(_ json: String) -> String? {
        try? json.write(toFile: dir + "/manifest.json", atomically: true, encoding: .utf8)
        do { _ = try GoldenSet.load(directory: dir); return nil } catch { return "\(error)" }
    }

    private func manifest(weights: String = "model.safetensors", input: String = "\"in.npy\"",
                          output: String = "out.npy") -> String {
        """
        {"format": "dinokit-golden/1", "weights": "\(weights)",
         "cases": [{"name": "a", "input": \(input), "outputs": {"x_norm_clstoken": "\(output)"}}]}
        """
    }

    func testAWellFormedManifestLoads() {
        XCTAssertNil(load(manifest()))
    }

    func testPathsMustStayInsideTheFolder() throws {
        XCTAssertEqual(symlink(root + "/secret.npy", dir + "/link.npy"), 0)
        let cases: [(String, String)] = [
            (manifest(weights: "../secret.npy"), "weights: '../secret.npy' leaves its folder"),
            (manifest(weights: root + "/secret.npy"), "weights: '\(root)/secret.npy' is not a path relative"),
            (manifest(input: "\"../secret.npy\""), "cases[a].input: '../secret.npy' leaves its folder"),
            (manifest(output: "link.npy"), "cases[a].outputs.x_norm_clstoken: 'link.npy' resolves outside its folder"),
        ]
        for (json, expected) in cases {
            let message = load(json) ?? "loaded"
            XCTAssertTrue(message.contains(expected), message)
            XCTAssertFalse(message.contains("\n"), message)
        }
        XCTAssertTrue(load(manifest(output: "missing.npy"))?.contains("does not exist") == true)
    }

    func testSyntheticInputsAreBounded() {
        let huge = "{\"synthetic\": \"lcg\", \"seed\": 1, \"shape\": [100000, 3, 518, 518]}"
        let message = load(manifest(input: huge)) ?? "loaded"
        XCTAssertTrue(message.contains("synthetic input shape [100000, 3, 518, 518] has 80497200000 elements, more than the limit"), message)
        XCTAssertNil(load(manifest(input: "{\"synthetic\": \"lcg\", \"seed\": 1, \"shape\": [1, 3, 28, 28]}")))
    }

    func testMalformedManifestsNameTheField() {
        let cases: [(String, String)] = [
            ("{\"format\": \"dinokit-golden/1\"}", "field 'cases' is missing"),
            ("{\"format\": 7, \"cases\": []}", "field 'format' is not a string"),
            (manifest(input: "{\"synthetic\": \"lcg\", \"seed\": 1, \"shape\": \"big\"}"), "field 'cases[0].input.shape' is not an array"),
            (manifest(input: "{\"synthetic\": \"lcg\", \"shape\": [1]}"), "field 'cases[0].input.seed' is missing"),
            ("{\"format\": \"dinokit-golden/1\", \"cases\": [{\"name\": \"a\", \"input\": \"in.npy\", \"outputs\": []}]}",
             "field 'cases[0].outputs' is not an object"),
            ("not json", "not valid JSON"),
        ]
        for (json, expected) in cases {
            let message = load(json) ?? "loaded"
            XCTAssertTrue(message.hasSuffix(expected), message)
            XCTAssertFalse(message.contains("\n") || message.contains("CodingKeys") || message.contains("Context"), message)
        }
    }

    /// A FIFO as the manifest used to block in open.
    func testAFIFOManifestIsRefused() throws {
        try? FileManager.default.removeItem(atPath: dir + "/manifest.json")
        XCTAssertEqual(mkfifo(dir + "/manifest.json", 0o644), 0)
        let dir = self.dir
        @Sendable func check() { XCTAssertThrowsError(try GoldenSet.load(directory: dir)) }
        let done = expectation(description: "load returns")
        Thread { check(); done.fulfill() }.start()
        wait(for: [done], timeout: 10)
    }
}
