import Foundation
import Formats
import TensorStore
import TestSupport
import Training
import XCTest

/// A debug state's files are untrusted input: damaged ones fail with an error that names the
/// file and what is wrong; `--out` writes what a debug state holds, under the same names.
final class DebugStateInputTests: XCTestCase {
    let source = fixturePath("sslstep/centering-shared")

    /// A copy of the state with one file replaced.
    func damagedCopy(_ file: String, _ contents: Data) throws -> String {
        let dir = makeTemporaryDirectory("sslstep")
        for name in try FileManager.default.contentsOfDirectory(atPath: source) {
            try FileManager.default.copyItem(atPath: source + "/" + name, toPath: dir + "/" + name)
        }
        try FileManager.default.removeItem(atPath: dir + "/" + file)
        FileManager.default.createFile(atPath: dir + "/" + file, contents: contents)
        return dir
    }

    func assertError(_ dir: String, contains fragments: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try DebugStateReplay.run(DebugState(directory: dir), parallelism: .serial), file: file, line: line) { e in
            for f in fragments { XCTAssertTrue("\(e)".contains(f), "\(e) lacks '\(f)'", file: file, line: line) }
        }
    }

    func testMissingFileIsNamed() throws {
        let dir = makeTemporaryDirectory("sslstep")
        assertError(dir, contains: ["initial.safetensors", "no such file"])
    }

    func testConfigErrorsNameTheKey() throws {
        let config = try String(contentsOfFile: source + "/config.json", encoding: .utf8)
        let cases: [(String, String, [String])] = [
            ("\"num_heads\": 2", "\"num_heads\": 5", ["num_heads"]),
            ("\"centering\": \"centering\"", "\"centering\": \"median\"", ["median"]),
            ("dinokit-sslstep/1", "dinokit-sslstep/9", ["dinokit-sslstep/9"]),
            ("\"out_dim\": 32,", "", ["out_dim"]),
            ("\"n_global_crops\": 2", "\"n_global_crops\": 3", ["n_global_crops"]),
        ]
        for (from, to, fragments) in cases {
            XCTAssertTrue(config.contains(from), from)
            let dir = try damagedCopy("config.json", Data(config.replacingOccurrences(of: from, with: to).utf8))
            assertError(dir, contains: ["config.json"] + fragments)
        }
    }

    func testWrongWeightsAreNamed() throws {
        var store = try Safetensors.read(path: source + "/initial.safetensors")
        store.remove("teacher.backbone.norm.bias")
        let dir = try damagedCopy("initial.safetensors", Data(try Safetensors.encode(store)))
        assertError(dir, contains: ["teacher.backbone.norm.bias", "missing"])

        var extra = try Safetensors.read(path: source + "/initial.safetensors")
        try extra.insert(try Tensor(shape: [2], floats: [1, 2]), named: "student.ibot_head.mlp.0.bias")
        let dir2 = try damagedCopy("initial.safetensors", Data(try Safetensors.encode(extra)))
        assertError(dir2, contains: ["student.ibot_head.mlp.0.bias"])
    }

    func testWrongStepInputsAreNamed() throws {
        var store = try NPZ.read(path: source + "/step_1.npz")
        store["masks"] = try [UInt8](repeating: 0, count: 30).withUnsafeBytes { try Tensor(dtype: .bool, shape: [6, 5], bytes: $0) }
        let dir = makeTemporaryDirectory("npz")
        try NPZ.write(store, to: dir + "/step_1.npz")
        let damaged = try damagedCopy("step_1.npz", try Data(contentsOf: URL(fileURLWithPath: dir + "/step_1.npz")))
        assertError(damaged, contains: ["step_1.npz", "masks"])
    }

    /// Global crops of another size than img_size are replayed (the table is resampled), but
    /// they must still be whole patches, at least one.
    func testGlobalCropsMustBeWholePatches() throws {
        for side in [21, 7] {
            var store = try NPZ.read(path: source + "/step_0.npz")
            store["global_crops"] = try Tensor(shape: [6, 3, side, side], floats: [Float](repeating: 0.5, count: 6 * 3 * side * side))
            let dir = makeTemporaryDirectory("npz")
            try NPZ.write(store, to: dir + "/step_0.npz")
            let damaged = try damagedCopy("step_0.npz", try Data(contentsOf: URL(fileURLWithPath: dir + "/step_0.npz")))
            assertError(damaged, contains: ["step_0.npz", "global crops of \(side)x\(side)", "multiple of the patch size 14"])
        }
    }

    /// `--out` writes losses.json, grads_0.safetensors and final.safetensors with the debug
    /// state's names and shapes, and a replay on two threads passes as well as on one.
    func testOutputFilesMirrorTheState() throws {
        let state = try DebugState(directory: source)
        let result = try DebugStateReplay.run(state, parallelism: .init(threads: 2))
        XCTAssertTrue(result.report.pass, result.report.failures.joined(separator: "; "))
        let out = makeTemporaryDirectory("train-step-out")
        try result.write(to: out)
        let losses = try DebugState.readLosses(path: out + "/losses.json")
        XCTAssertEqual(losses, result.losses)
        let grads = try Safetensors.read(path: out + "/grads_0.safetensors")
        let final = try Safetensors.read(path: out + "/final.safetensors")
        XCTAssertEqual(Set(grads.names), Set(state.expectedGradients.names))
        XCTAssertEqual(Set(final.names), Set(state.expectedFinal.names))
        for name in final.names { XCTAssertEqual(final[name]?.shape, state.expectedFinal[name]?.shape, name) }
    }
}
