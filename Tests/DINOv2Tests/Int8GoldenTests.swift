import DINOv2
import Foundation
import Kernels
import TestSupport
import XCTest

/// `Precision.int8` against the float32 goldens of the official PyTorch code: every golden set
/// (DINOv2 and DINOv3 tiny sets) passes `Verifier` at int8's tolerance (mean cosine ≥ 0.999 per
/// output, max abs ≤ 0.1 + 0.1·max |golden|) on the active kernel path (run the suite with
/// DINOKIT_KERNELS=avx512|avx2|scalar), on the AVX-512 path with every int8 tile the CPU has (AMX,
/// AVX512_VNNI, the pmaddubsw fallback). The tolerance has teeth: one scale per GEMM input instead
/// of one per token fails it. A manifest's "tolerances": {"int8": ...} replaces the default.
final class Int8GoldenTests: XCTestCase {
    /// Every golden set at int8; (name, least mean cosine, largest max abs error over its outputs, pass).
    func verifyAll(_ label: String) throws -> [(String, Double, Double, Bool)] {
        let dirs = try GoldenSetVerificationTests.goldenDirectories()
        XCTAssertGreaterThanOrEqual(dirs.count, 7)
        return try dirs.map { dir in
            let set = try GoldenSet.load(directory: dir)
            let report = try Verifier.run(set, precision: .int8, parallelism: .init(threads: 2))
            let name = (dir as NSString).lastPathComponent
            XCTAssertEqual(report.precision, "int8")
            XCTAssertEqual(report.tolerance, Verifier.defaultInt8Tolerance)
            var worstCosine = 1.0, worstAbs = 0.0
            for c in report.cases {
                for o in c.outputs {
                    XCTAssertNil(o.error, "\(label) \(name)/\(c.name)/\(o.key)")
                    worstCosine = min(worstCosine, o.cosine ?? 0)
                    worstAbs = max(worstAbs, o.maxAbsErr ?? .infinity)
                }
            }
            print(String(format: "%@ %@ int8: least mean cosine %.6f, max abs err %.3g, %@", label, name, worstCosine,
                         worstAbs, report.pass ? "pass" : "FAIL"))
            return (name, worstCosine, worstAbs, report.pass)
        }
    }

    func testEveryGoldenSetPassesAtInt8Tolerance() throws {
        func check(_ label: String) throws {
            for (name, cosine, abs, pass) in try verifyAll(label) {
                XCTAssertTrue(pass, "\(label) \(name): least mean cosine \(cosine), max abs err \(abs)")
            }
        }
        guard KernelDispatch.active == .avx512 else {
            try check("\(kernelPathLabel) (\(KernelDispatch.int8Kernel))")
            return
        }
        defer { KernelDispatch.limitInt8Tile(.amx) }
        for tile in KernelDispatch.supportedInt8Tiles {
            XCTAssertEqual(KernelDispatch.limitInt8Tile(tile), tile)
            try check("\(kernelPathLabel) \(tile) (\(KernelDispatch.int8Kernel))")
        }
    }

    /// The mutation check: quantizing each GEMM's whole input with one scale (the per-tensor
    /// alternative to per-token scales) loses enough that the int8 tolerance fails some golden
    /// sets — so passing it says the per-token rule is in place.
    func testPerTensorActivationScalesFailTheTolerance() throws {
        KernelDispatch.useInt8TensorScale(true)
        defer { KernelDispatch.useInt8TensorScale(false) }
        let results = try verifyAll("\(kernelPathLabel) per-tensor (\(KernelDispatch.int8Kernel))")
        XCTAssertTrue(results.contains { !$0.3 }, "per-tensor activation scales pass every golden set: the tolerance cannot tell")
    }

    /// A manifest's "tolerances": {"int8": {...}} is read (keys left out keep int8's defaults, not
    /// bf16's) and decides the verdict: an unreachable cosine fails the set.
    func testManifestToleranceReplacesTheDefault() throws {
        let source = fixturePath("golden/tiny-plain")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("int8-tol-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for name in try FileManager.default.contentsOfDirectory(atPath: source) where name != "manifest.json" {
            try FileManager.default.copyItem(atPath: source + "/" + name, toPath: dir + "/" + name)
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: source + "/manifest.json"))
        var manifest = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        manifest["tolerances"] = ["int8": ["min_cosine": 0.99999999], "bf16": ["atol": 0.5]]
        try JSONSerialization.data(withJSONObject: manifest).write(to: URL(fileURLWithPath: dir + "/manifest.json"))
        let set = try GoldenSet.load(directory: dir)
        let t = try XCTUnwrap(set.int8Tolerance)
        XCTAssertEqual(t, SimilarityTolerance(minCosine: 0.99999999, atol: Verifier.defaultInt8Tolerance.atol,
                                              rtol: Verifier.defaultInt8Tolerance.rtol))
        XCTAssertEqual(set.bf16Tolerance, SimilarityTolerance(minCosine: Verifier.defaultBF16Tolerance.minCosine, atol: 0.5,
                                                              rtol: Verifier.defaultBF16Tolerance.rtol))
        let report = try Verifier.run(set, precision: .int8, parallelism: .init(threads: 2))
        XCTAssertEqual(report.tolerance, t)
        XCTAssertFalse(report.pass)
        XCTAssertTrue(try Verifier.run(GoldenSet.load(directory: source), precision: .int8, parallelism: .init(threads: 2)).pass)
    }
}
