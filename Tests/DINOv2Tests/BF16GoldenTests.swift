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
    func verifyAll(_ label: String) throws {
        let dirs = try GoldenSetVerificationTests.goldenDirectories()
        XCTAssertGreaterThanOrEqual(dirs.count, 7)
        for dir in dirs {
            let set = try GoldenSet.load(directory: dir)
            let report = try Verifier.run(set, precision: .bf16, parallelism: .init(threads: 2))
            let name = (dir as NSString).lastPathComponent
            XCTAssertEqual(report.precision, "bf16")
            XCTAssertEqual(report.tolerance, Verifier.defaultBF16Tolerance)
            var worstCosine = 1.0, worstAbs = 0.0
            for c in report.cases {
                for o in c.outputs {
                    XCTAssertTrue(o.pass, "\(label) \(name)/\(c.name)/\(o.key): cosine \(o.cosine ?? .nan) max abs \(o.maxAbsErr ?? .nan) \(o.error ?? "")")
                    worstCosine = min(worstCosine, o.cosine ?? 0)
                    worstAbs = max(worstAbs, o.maxAbsErr ?? .infinity)
                }
            }
            print(String(format: "%@ %@ bf16: least mean cosine %.6f, max abs err %.3g", label, name, worstCosine, worstAbs))
            XCTAssertTrue(report.pass, "\(label) \(name)")
        }
    }

    func testEveryGoldenSetPassesAtBF16Tolerance() throws {
        guard KernelDispatch.active == .avx512 else {
            try verifyAll("\(KernelDispatch.active.rawValue) (\(KernelDispatch.bf16Kernel))")
            return
        }
        defer { KernelDispatch.limitBF16Tile(.amx) }
        for tile in KernelDispatch.supportedBF16Tiles {
            XCTAssertEqual(KernelDispatch.limitBF16Tile(tile), tile)
            try verifyAll("avx512 \(tile) (\(KernelDispatch.bf16Kernel))")
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
        let source = fixturePath("golden/tiny-plain")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bf16-tol-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for name in try FileManager.default.contentsOfDirectory(atPath: source) where name != "manifest.json" {
            try FileManager.default.copyItem(atPath: source + "/" + name, toPath: dir + "/" + name)
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: source + "/manifest.json"))
        var manifest = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        manifest["tolerances"] = ["bf16": ["min_cosine": 0.99999999]]
        try JSONSerialization.data(withJSONObject: manifest).write(to: URL(fileURLWithPath: dir + "/manifest.json"))
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
