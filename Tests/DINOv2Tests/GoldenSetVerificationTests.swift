import DINOv2
import Foundation
import TestSupport
import XCTest

/// Every golden set in Fixtures/golden (made by Scripts/make-goldens from the official PyTorch
/// code) passes the verifier at its default tolerance: tiny plain, register and SwiGLU models at
/// 224, 168×252, 518, 644, masked, batch 2, intermediate layers, official and HF interpolation.
final class GoldenSetVerificationTests: XCTestCase {
    static func goldenDirectories() throws -> [String] {
        let root = fixturePath("golden")
        let names = try FileManager.default.contentsOfDirectory(atPath: root).sorted()
        return names.map { root + "/" + $0 }.filter { FileManager.default.fileExists(atPath: $0 + "/manifest.json") }
    }

    func testEveryGoldenSetPassesAtDefaultTolerance() throws {
        let dirs = try Self.goldenDirectories()
        XCTAssertGreaterThanOrEqual(dirs.count, 4, "expected tiny-plain, tiny-reg, tiny-swiglu and tiny-plain-hf")
        for dir in dirs {
            let set = try GoldenSet.load(directory: dir)
            let report = try Verifier.run(set, parallelism: .init(threads: 2))
            let name = (dir as NSString).lastPathComponent
            for c in report.cases {
                for o in c.outputs {
                    print(kernelPathLabel, String(format: "%@ %@ %@: max_abs_err %.3g max_rel_err %.3g max_abs_ref %.3g %@",
                                 name, c.name, o.key, o.maxAbsErr ?? .nan, o.maxRelErr ?? .nan, o.maxAbsRef ?? .nan,
                                 o.pass ? "pass" : "FAIL \(o.error ?? "")"))
                    XCTAssertTrue(o.pass, "\(name)/\(c.name)/\(o.key): \(o.error ?? "max abs err \(o.maxAbsErr ?? .nan)")")
                }
            }
            XCTAssertTrue(report.pass, name)
            XCTAssertFalse(report.cases.isEmpty, name)
        }
    }

    func testReportEncodesTheVerifyJSONSchema() throws {
        let report = VerificationReport(pass: false, cases: [
            CaseReport(name: "x", outputs: [
                OutputReport(key: "forward", maxAbsErr: 1e-6, maxRelErr: 2e-7, maxAbsRef: 5, pass: true, error: nil),
                OutputReport(key: "x_prenorm", maxAbsErr: .nan, maxRelErr: .infinity, maxAbsRef: 1, pass: false, error: nil),
            ]),
        ])
        let json = try JSONSerialization.jsonObject(with: report.jsonData()) as? [String: Any]
        XCTAssertEqual(json?["pass"] as? Bool, false)
        let cases = json?["cases"] as? [[String: Any]]
        XCTAssertEqual(cases?.first?["name"] as? String, "x")
        let outputs = cases?.first?["outputs"] as? [[String: Any]]
        XCTAssertEqual(outputs?.count, 2)
        XCTAssertEqual(outputs?[0]["key"] as? String, "forward")
        XCTAssertEqual(outputs?[0]["max_abs_err"] as? Double, 1e-6)
        XCTAssertEqual(outputs?[0]["max_rel_err"] as? Double, 2e-7)
        XCTAssertEqual(outputs?[0]["max_abs_ref"] as? Double, 5)
        XCTAssertEqual(outputs?[0]["pass"] as? Bool, true)
        XCTAssertTrue(outputs?[1]["max_abs_err"] is NSNull, "non-finite errors are null")
    }
}
