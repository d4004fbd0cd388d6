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
    func testEveryGoldenSetPassesAtInt8Tolerance() throws {
        try ReducedPrecisionGoldens.eachTile(.int8) { label in
            for v in try ReducedPrecisionGoldens.verifyAll(.int8, tolerance: Verifier.defaultInt8Tolerance, label: label) {
                XCTAssertTrue(v.pass, "\(label) \(v.name): least mean cosine \(v.leastCosine), max abs err \(v.maxAbs)")
            }
        }
    }

    /// The mutation check: quantizing each GEMM's whole input with one scale (the per-tensor
    /// alternative to per-token scales) loses enough that the int8 tolerance fails some golden
    /// sets — so passing it says the per-token rule is in place.
    func testPerTensorActivationScalesFailTheTolerance() throws {
        KernelDispatch.useInt8TensorScale(true)
        defer { KernelDispatch.useInt8TensorScale(false) }
        let results = try ReducedPrecisionGoldens.verifyAll(.int8, tolerance: Verifier.defaultInt8Tolerance,
                                                            label: "\(kernelPathLabel) per-tensor (\(KernelDispatch.int8Kernel))")
        XCTAssertTrue(results.contains { !$0.pass }, "per-tensor activation scales pass every golden set: the tolerance cannot tell")
    }

    /// A manifest's "tolerances": {"int8": {...}} is read (keys left out keep int8's defaults, not
    /// bf16's) and decides the verdict: an unreachable cosine fails the set.
    func testManifestToleranceReplacesTheDefault() throws {
        let dir = try ReducedPrecisionGoldens.tinyPlainCopy(tolerances: ["int8": ["min_cosine": 0.99999999], "bf16": ["atol": 0.5]])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let set = try GoldenSet.load(directory: dir)
        let t = try XCTUnwrap(set.int8Tolerance)
        XCTAssertEqual(t, SimilarityTolerance(minCosine: 0.99999999, atol: Verifier.defaultInt8Tolerance.atol,
                                              rtol: Verifier.defaultInt8Tolerance.rtol))
        XCTAssertEqual(set.bf16Tolerance, SimilarityTolerance(minCosine: Verifier.defaultBF16Tolerance.minCosine, atol: 0.5,
                                                              rtol: Verifier.defaultBF16Tolerance.rtol))
        let report = try Verifier.run(set, precision: .int8, parallelism: .init(threads: 2))
        XCTAssertEqual(report.tolerance, t)
        XCTAssertFalse(report.pass)
        XCTAssertTrue(try Verifier.run(GoldenSet.load(directory: fixturePath("golden/tiny-plain")), precision: .int8, parallelism: .init(threads: 2)).pass)
    }
}
