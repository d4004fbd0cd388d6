import TestSupport
import XCTest

/// One error convention for every command: `dinokit: error: …` (+ `hint: …` for usage errors),
/// exit 64 for usage errors, 1 for runtime errors.
final class ErrorConventionTests: XCTestCase {
    func testRuntimeErrorIsOneLineWithStatus1() throws {
        let r = try dinokit(["inspect", "/nonexistent/weights.pth"])
        assertRuntimeError(r, contains: "/nonexistent/weights.pth")
    }

    func testMissingArgumentIsUsageErrorWithHelpHint() throws {
        assertUsageError(try dinokit(["inspect"]), contains: "<path>", hint: "see 'dinokit inspect --help'")
        assertUsageError(try dinokit(["train", "ssl", "--weights", "w.pth"]), contains: "--data", hint: "see 'dinokit train ssl --help'")
    }

    /// A ValidationError a command throws from run() (options wrong together) keeps its usage hint.
    func testValidationErrorInRunIsUsageError() throws {
        let r = try dinokit(["embed", "--weights", "w.safetensors", "--out", "/tmp/none.npy"])
        assertUsageError(r, contains: "give exactly one of", hint: "see 'dinokit embed --help'")
    }

    func testValidateErrorIsUsageError() throws {
        let r = try dinokit(["forward", "--weights", "w", "--input", "i.npy", "--out", "o.npz", "--threads", "0"])
        assertUsageError(r, contains: "--threads must be positive", hint: "see 'dinokit forward --help'")
    }

    func testHelpAndVersionExitZero() throws {
        let help = try dinokit(["convert", "--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.stdout.contains("USAGE: dinokit convert"), help.stdout)
        let version = try dinokit(["--version"])
        XCTAssertEqual(version.status, 0)
        XCTAssertFalse(version.stdout.isEmpty)
    }
}

/// Mistyped commands and options get the nearest name, exit 64.
final class TypoSuggestionTests: XCTestCase {
    func testMistypedCommandSuggestsNearest() throws {
        assertUsageError(try dinokit(["inspcet", "model.pth"]), contains: "unknown command 'dinokit inspcet'",
                         hint: "did you mean 'dinokit inspect'?")
    }

    func testMistypedSubcommandSuggestsNearest() throws {
        assertUsageError(try dinokit(["train", "sll", "--data", "x"]), contains: "unknown command 'dinokit train sll'",
                         hint: "did you mean 'dinokit train ssl'?")
    }

    func testHelpForUnknownCommandIsUsageError() throws {
        assertUsageError(try dinokit(["help", "inspcet"]), contains: "unknown command 'dinokit inspcet'",
                         hint: "did you mean 'dinokit inspect'?")
        let known = try dinokit(["help", "inspect"])
        XCTAssertEqual(known.status, 0)
        XCTAssertTrue(known.stdout.contains("USAGE: dinokit inspect"), known.stdout)
    }

    func testFarWordGetsOnlyTheHelpHint() throws {
        let r = try dinokit(["frobnicate"])
        assertUsageError(r, contains: "unknown command 'dinokit frobnicate'", hint: "see 'dinokit --help'")
        XCTAssertFalse(r.stderr.contains("did you mean"), r.stderr)
    }

    func testMistypedOptionSuggestsNearest() throws {
        let r = try dinokit(["forward", "--weights", "w", "--input", "i.npy", "--out", "o.npz", "--intermediat", "1"])
        assertUsageError(r, contains: "unknown option '--intermediat'", hint: "did you mean '--intermediate'? see 'dinokit forward --help'")
    }

    /// A mistyped required option is reported as unknown, not as the required one missing.
    func testMistypedRequiredOptionIsNotReportedAsMissing() throws {
        let r = try dinokit(["forward", "--wieghts", "w", "--input", "i.npy", "--out", "o.npz"])
        assertUsageError(r, contains: "unknown option '--wieghts'", hint: "did you mean '--weights'? see 'dinokit forward --help'")
    }

    func testEditDistanceCountsATranspositionOnce() throws {
        // Through the binary: a transposition ("inspcet") and a substitution ("sll") are one edit.
        XCTAssertTrue(try dinokit(["verfiy"]).stderr.contains("did you mean 'dinokit verify'?"))
    }
}
