import DINOv2
import Formats
import Foundation
import TensorStore
import TestSupport
import XCTest

/// `dinokit forward` under a weight budget smaller than the model streams it (one block at a
/// time) and writes the same arrays, bit for bit, as the run that holds every weight; it says
/// which it did (--json `weights`, and a line of its human output).
final class StreamedForwardCLITests: XCTestCase {
    /// A DINOv2 model with registers and a DINOv3 one with SwiGLU and the untied cls norm.
    static let shapes: [(String, RandomWeights.VariantShape)] = [
        ("dinov2", .init(dim: 64, depth: 4, hidden: 256, swiglu: false, registers: 4, heads: 4)),
        ("dinov3", .init(dim: 64, depth: 4, hidden: 128, swiglu: true, registers: 4, family: .dinov3, qkvBias: false,
                         untiedNorm: true, heads: 4)),
    ]

    func testAForwardOverTheBudgetIsStreamedWithTheSameOutputs() throws {
        let dir = makeTemporaryDirectory("dinokit-streamed")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (name, shape) in Self.shapes {
            let weights = dir + "/\(name).safetensors", input = dir + "/\(name).npy"
            try Safetensors.write(try RandomWeights.hubStore(shape), to: weights)
            let patch = shape.family == .dinov3 ? 16 : 14
            try NPY.write(try SyntheticInput.tensor(seed: 5, shape: [2, 3, 2 * patch, 3 * patch]), to: input)
            func forward(_ out: String, _ extra: [String], environment: [String: String] = [:]) throws -> CLIResult {
                let r = try dinokit(["forward", "--weights", weights, "--input", input, "--out", dir + "/" + out,
                                     "--intermediate", "1,3"] + extra, environment: environment)
                XCTAssertEqual(r.status, 0, "\(name) \(extra): \(r.stderr)")
                return r
            }
            let inMemory = try forward("\(name)-memory.npz", ["--json"])
            XCTAssertEqual(try inMemory.json()["weights"] as? String, "in-memory", name)
            XCTAssertNil(try inMemory.json()["peak_weight_bytes"], name)

            let streamed = try forward("\(name)-streamed.npz", ["--json", "--max-weight-memory", "64K"])
            XCTAssertEqual(try streamed.json()["weights"] as? String, "streamed", name)
            let peak = try XCTUnwrap(try streamed.json()["peak_weight_bytes"] as? Int, name)
            XCTAssertLessThan(peak, Model.inMemoryWeightBytes(hubStore: try RandomWeights.hubStore(shape)), name)

            // The environment sets the budget when the option does not; the human output says it.
            let human = try forward("\(name)-env.npz", [], environment: ["DINOKIT_MAX_WEIGHT_MEMORY": "256K"])
            XCTAssertTrue(human.stdout.contains("weights: streamed, one block at a time"), human.stdout)

            let expected = try NPZ.read(path: dir + "/\(name)-memory.npz")
            XCTAssertEqual(expected.names.sorted(), ["forward", "intermediate.1.cls", "intermediate.1.patch", "intermediate.3.cls",
                                                     "intermediate.3.patch", "x_norm_clstoken", "x_norm_patchtokens", "x_prenorm",
                                                     name == "dinov3" ? "x_storage_tokens" : "x_norm_regtokens"].sorted())
            for file in ["\(name)-streamed.npz", "\(name)-env.npz"] {
                let got = try NPZ.read(path: dir + "/" + file)
                XCTAssertEqual(got.names, expected.names, file)
                for (array, t) in expected.tensors {
                    XCTAssertTrue(try XCTUnwrap(got[array], "\(file) \(array)").bitwiseEqual(t), "\(file): \(array) differs")
                }
            }
        }
    }

    func testABadBudgetIsAUsageError() throws {
        let args = ["forward", "--weights", "w", "--input", "i.npy", "--out", "o.npz"]
        assertUsageError(try dinokit(args + ["--max-weight-memory", "lots"]), contains: "--max-weight-memory: 'lots' is not a size")
        assertUsageError(try dinokit(args, environment: ["DINOKIT_MAX_WEIGHT_MEMORY": "-3G"]),
                         contains: "DINOKIT_MAX_WEIGHT_MEMORY='-3G' is not a size")
    }
}
