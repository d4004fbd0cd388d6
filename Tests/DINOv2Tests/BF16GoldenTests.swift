import DINOv2
import Foundation
import Kernels
import TestSupport
import XCTest

/// `Precision.bf16` against the float32 goldens of the official PyTorch code: every golden set
/// (DINOv2 and DINOv3 tiny sets) passes `Verifier` at bf16's tolerance (mean cosine ≥ 0.999 per
/// output, max abs ≤ 0.05 + 0.05·max |golden|) on the active kernel path (run the suite with
/// DINOKIT_KERNELS=avx512|avx2|scalar), on the AVX-512 path with every bf16 tile the CPU has (AMX,
/// AVX512_BF16, the widening fallback). A manifest's "tolerances" replace the defaults.
final class BF16GoldenTests: XCTestCase {
    func testEveryGoldenSetPassesAtBF16Tolerance() throws {
        try ReducedPrecisionGoldens.eachTile(.bf16) { label in
            for v in try ReducedPrecisionGoldens.verifyAll(.bf16, tolerance: Verifier.defaultBF16Tolerance, label: label) {
                XCTAssertEqual(v.failedOutputs, [], "\(label) \(v.name)")
                XCTAssertTrue(v.pass, "\(label) \(v.name)")
            }
        }
    }

    func testModelPrecisionDefaultsToF32AndReportsKeepTheirSchema() throws {
        let set = try GoldenSet.load(directory: fixturePath("golden/tiny-plain"))
        let report = try Verifier.run(set, parallelism: .init(threads: 2))
        XCTAssertNil(report.precision)
        XCTAssertNil(report.tolerance)
        XCTAssertTrue(report.pass)
        let json = try JSONSerialization.jsonObject(with: report.jsonData()) as? [String: Any]
        XCTAssertNil(json?["precision"])
        let first = ((json?["cases"] as? [[String: Any]])?.first?["outputs"] as? [[String: Any]])?.first
        XCTAssertNotNil(first?["cosine"] as? Double)
        XCTAssertNotNil(first?["min_cosine"] as? Double)
    }

    /// A manifest's "tolerances": {"bf16": {...}} is read (keys left out keep the defaults) and
    /// decides the verdict: an unreachable cosine fails the set.
    func testManifestToleranceReplacesTheDefault() throws {
        let dir = try ReducedPrecisionGoldens.tinyPlainCopy(tolerances: ["bf16": ["min_cosine": 0.99999999]])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let set = try GoldenSet.load(directory: dir)
        let t = try XCTUnwrap(set.bf16Tolerance)
        XCTAssertEqual(t.minCosine, 0.99999999)
        XCTAssertEqual(t.atol, Verifier.defaultBF16Tolerance.atol)
        XCTAssertEqual(t.rtol, Verifier.defaultBF16Tolerance.rtol)
        let report = try Verifier.run(set, precision: .bf16, parallelism: .init(threads: 2))
        XCTAssertEqual(report.tolerance, t)
        XCTAssertFalse(report.pass)
    }
}
