import TestSupport
import XCTest

/// `train ssl --resume`: the same command line may repeat the run's settings; a differing one is
/// refused by name; `--resume auto` starts a run and then continues it.
final class ResumeSettingsTests: XCTestCase {
    func testRepeatedSettingsAreAcceptedAndConflictsNamed() throws {
        let work = makeTemporaryDirectory("dinokit-resume")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let config = """
        {"global_crops_size": 28, "local_crops_size": 14, "local_crops_number": 2, "head_n_prototypes": 32,
         "ibot_head_n_prototypes": 32, "head_hidden_dim": 32, "head_bottleneck_dim": 16, "epochs": 1, "batch_size": 2}
        """
        try config.write(toFile: work + "/tiny.json", atomically: true, encoding: .utf8)
        let run = work + "/run"
        let common = ["train", "ssl", "--weights", fixturePath("models/mini-plain.pth"), "--num-heads", "2",
                      "--data", fixturePath("finetune/images"), "--config", work + "/tiny.json", "--quiet"]

        // auto starts the run (no checkpoint yet) ...
        let first = try dinokit(common + ["--out", run, "--resume", "auto", "--stop-after", "1", "--json"])
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertEqual(try first.json()["steps"] as? Int, 1)
        // ... and continues it with the same command line.
        let second = try dinokit(common + ["--out", run, "--resume", "auto", "--stop-after", "2", "--json"])
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertEqual(try second.json()["steps"] as? Int, 1, "one more step, from the checkpoint")

        // --resume RUN with the settings repeated, --out included.
        let repeated = try dinokit(common + ["--out", run, "--resume", run, "--stop-after", "3"])
        XCTAssertEqual(repeated.status, 0, repeated.stderr)

        // Conflicts are refused, each named.
        let conflicting = try dinokit(common + ["--resume", run, "--batch", "4", "--seed", "9"])
        assertUsageError(conflicting, contains: "batch_size 4 (the run has 2)")
        XCTAssertTrue(conflicting.stderr.contains("seed 9 (the run has 0)"), conflicting.stderr)
        let otherOut = try dinokit(common + ["--resume", run, "--out", work + "/elsewhere"])
        assertUsageError(otherOut, contains: "is not the resumed run")
    }
}
