import TestSupport
import XCTest

/// Small corners of the command line (issue 16).
final class SmallFixesTests: XCTestCase {
    func testVerifyAcceptsTheManifestPath() throws {
        let r = try dinokit(["verify", fixturePath("golden/tiny-plain/manifest.json")])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("0 failed"), r.stdout)
    }

    func testNegativeCIsValidatedNotMissing() throws {
        let r = try dinokit(["probe", "--C", "-1", "--train-features", "a.npy"])
        assertUsageError(r, contains: "--C must be a positive number", hint: "see 'dinokit probe --help'")
    }

    func testConvertDoesNotOfferUnknownLayout() throws {
        let help = try dinokit(["convert", "--help"])
        XCTAssertTrue(help.stdout.contains("training"), help.stdout)
        XCTAssertFalse(help.stdout.contains("unknown"), help.stdout)
        assertUsageError(try dinokit(["convert", "a.pth", "b.pth", "--layout", "unknown"]), contains: "'unknown' is invalid")
    }

    func testChunksNeedTheTrainingLayout() throws {
        assertUsageError(try dinokit(["convert", "a.pth", "b.pth", "--chunks", "2"]), contains: "--chunks applies only with --layout training")
    }

    func testExportONNXHelpStatesEachDefaultOnce() throws {
        let help = try dinokit(["export-onnx", "--help"]).stdout
        XCTAssertFalse(help.contains("(default official)"), help)
        XCTAssertFalse(help.contains("(default 18"), help)
        XCTAssertEqual(help.components(separatedBy: "(default: official)").count, 2, help)
    }

    func testTrainStepIsUnderTrainAndTheOldNameStillWorks() throws {
        let top = try dinokit(["--help"]).stdout
        XCTAssertFalse(top.contains("train-step"), "the old name is hidden: \(top)")
        let train = try dinokit(["train", "--help"]).stdout
        XCTAssertTrue(train.contains("step"), train)
        for command in [["train", "step"], ["train-step"]] {
            let r = try dinokit(command + ["/nonexistent/state"])
            assertRuntimeError(r, contains: "/nonexistent/state")
        }
    }

    func testExportAbstractsSayWhichIsWhich() throws {
        let top = try dinokit(["--help"]).stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        XCTAssertTrue(top.contains("export-onnx Write DINOv2 or DINOv3 weights (any format) as an ONNX model"), top)
        XCTAssertTrue(top.contains("export Write a training run's checkpoint as weights"), top)
    }
}
