import DINOv2
import Foundation
import Kernels
import TestSupport
import XCTest

/// What BF16GoldenTests and Int8GoldenTests share: every tiny golden set verified at a reduced
/// precision against the official float32 outputs, on each GEMM tile the active path has for it,
/// and a golden set copied with a manifest of one's own.
enum ReducedPrecisionGoldens {
    /// One golden set at `precision`: the least mean cosine and the largest max abs error over its
    /// outputs, the outputs that failed, and the verdict.
    struct Verdict {
        let name: String
        let leastCosine: Double
        let maxAbs: Double
        let failedOutputs: [String]
        let pass: Bool
    }

    /// Every golden set at `precision`, each held to `tolerance` (the default: no manifest states
    /// its own), with a line per set.
    static func verifyAll(_ precision: Precision, tolerance: SimilarityTolerance, label: String) throws -> [Verdict] {
        let dirs = try GoldenSetVerificationTests.goldenDirectories()
        XCTAssertGreaterThanOrEqual(dirs.count, 7)
        return try dirs.map { dir in
            let set = try GoldenSet.load(directory: dir)
            let report = try Verifier.run(set, precision: precision, parallelism: .init(threads: 2))
            let name = (dir as NSString).lastPathComponent
            XCTAssertEqual(report.precision, precision.rawValue)
            XCTAssertEqual(report.tolerance, tolerance)
            var worstCosine = 1.0, worstAbs = 0.0, failed: [String] = []
            for c in report.cases {
                for o in c.outputs {
                    XCTAssertNil(o.error, "\(label) \(name)/\(c.name)/\(o.key)")
                    if !o.pass { failed.append("\(c.name)/\(o.key): cosine \(o.cosine ?? .nan) max abs \(o.maxAbsErr ?? .nan)") }
                    worstCosine = min(worstCosine, o.cosine ?? 0)
                    worstAbs = max(worstAbs, o.maxAbsErr ?? .infinity)
                }
            }
            print(String(format: "%@ %@ %@: least mean cosine %.6f, max abs err %.3g, %@", label, name, precision.rawValue,
                         worstCosine, worstAbs, report.pass ? "pass" : "FAIL"))
            return Verdict(name: name, leastCosine: worstCosine, maxAbs: worstAbs, failedOutputs: failed, pass: report.pass)
        }
    }

    /// Runs `body` once per GEMM tile of `precision` the AVX-512 path has (fastest last, then the
    /// fastest restored), or once on another path; `body` gets a label naming path and tile.
    static func eachTile(_ precision: Precision, _ body: (String) throws -> Void) rethrows {
        let kernel = { KernelDispatch.gemmKernel(for: precision) }
        guard KernelDispatch.active == .avx512 else { return try body("\(kernelPathLabel) (\(kernel()))") }
        switch precision {
        case .f32:
            try body("\(kernelPathLabel) (\(kernel()))")
        case .bf16:
            defer { KernelDispatch.limitBF16Tile(.amx) }
            for tile in KernelDispatch.supportedBF16Tiles {
                XCTAssertEqual(KernelDispatch.limitBF16Tile(tile), tile)
                try body("\(kernelPathLabel) \(tile) (\(kernel()))")
            }
        case .int8:
            defer { KernelDispatch.limitInt8Tile(.amx) }
            for tile in KernelDispatch.supportedInt8Tiles {
                XCTAssertEqual(KernelDispatch.limitInt8Tile(tile), tile)
                try body("\(kernelPathLabel) \(tile) (\(kernel()))")
            }
        }
    }

    /// A copy of golden/tiny-plain whose manifest carries `tolerances`; removed by the caller.
    static func tinyPlainCopy(tolerances: [String: Any]) throws -> String {
        let source = fixturePath("golden/tiny-plain")
        let dir = makeTemporaryDirectory("precision-tol")
        for name in try FileManager.default.contentsOfDirectory(atPath: source) where name != "manifest.json" {
            try FileManager.default.copyItem(atPath: source + "/" + name, toPath: dir + "/" + name)
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: source + "/manifest.json"))
        var manifest = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        manifest["tolerances"] = tolerances
        try JSONSerialization.data(withJSONObject: manifest).write(to: URL(fileURLWithPath: dir + "/manifest.json"))
        return dir
    }
}
