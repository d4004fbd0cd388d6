import Foundation
import TestSupport
import XCTest

/// `export-onnx --dtype`: each value reaches the file (its metadata and the JSON summary), and an
/// unknown one is a usage error naming the choices.
final class ExportONNXDTypeTests: XCTestCase {
    func testEachDTypeIsWrittenAndReported() throws {
        let dir = makeTemporaryDirectory("cli-onnx-dtype")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let weights = fixturePath("golden/tiny-plain/model.safetensors")
        for (flag, reported) in [("f32", "F32"), ("f16", "F16"), ("bf16", "BF16"), ("int8", "I8")] {
            let r = try dinokit(["export-onnx", "--weights", weights, "--out", "\(dir)/\(flag).onnx", "--dtype", flag, "--json"])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertEqual(try r.json()["dtype"] as? String, reported, flag)
            let inspect = try dinokit(["inspect", "\(dir)/\(flag).onnx", "--json"])
            let metadata = try XCTUnwrap(try inspect.json()["metadata"] as? [String: Any], inspect.stdout)
            XCTAssertEqual(metadata["dinokit.weights_dtype"] as? String, reported, flag)
        }
        let text = try dinokit(["export-onnx", "--weights", weights, "--out", "\(dir)/text.onnx", "--dtype", "int8"])
        XCTAssertTrue(text.stdout.contains("int8 (dynamic per-token, MatMulInteger) Linear layers"), text.stdout)
    }

    func testUnknownDTypeIsAUsageError() throws {
        assertUsageError(try dinokit(["export-onnx", "--weights", "w", "--out", "o.onnx", "--dtype", "int4"]),
                         contains: "--dtype must be f32, f16, bf16 or int8, not 'int4'")
    }
}
