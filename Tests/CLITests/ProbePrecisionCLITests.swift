import Foundation
import TestSupport
import XCTest

/// `probe --precision`: the features are extracted at that precision and the output says which
/// (the numbers are ProbePrecisionTests'); feature files are used as they are, so a reduced
/// precision there is a usage error rather than a silent no-op.
final class ProbePrecisionCLITests: XCTestCase {
    func testTheSummaryAndTheReportStateThePrecision() throws {
        let out = makeTemporaryDirectory("probe-precision-cli")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try dinokit(["probe", "--quiet", "--weights", fixturePath("golden/tiny-plain/model.safetensors"), "--num-heads", "2",
                             "--cifar10", fixturePath("cifar/cifar-10-batches-bin"), "--resize", "28", "--precision", "bf16",
                             "--report", out + "/report"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.hasPrefix("train 100, test 50, features 32-d (model at bf16), 10 classes\n"), r.stdout)
        let data = try Data(contentsOf: URL(fileURLWithPath: out + "/report/report.json"))
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual((report["result"] as? [String: Any])?["precision"] as? String, "bf16")
    }

    func testAReducedPrecisionIsRefusedForFeatureFiles() throws {
        let probe = fixturePath("probe/binary")
        let r = try dinokit(["probe", "--train-features", probe + ".train.npy", "--train-labels", probe + ".train_labels.npy",
                             "--test-features", probe + ".test.npy", "--test-labels", probe + ".test_labels.npy", "--precision", "bf16"])
        assertUsageError(r, contains: "--precision applies to features extracted from images", hint: "see 'dinokit probe --help'")
    }
}
