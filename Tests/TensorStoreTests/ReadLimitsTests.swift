import Foundation
import TensorStore
import TestSupport
import XCTest

/// `DINOKIT_READ_MEMORY_LIMIT`: a value the user set is applied or refused, never ignored.
final class ReadLimitsTests: XCTestCase {
    func testSizesAndTheirSuffixesParse() {
        XCTAssertEqual(ReadLimits.parseByteCount("16G"), 16 << 30)
        XCTAssertEqual(ReadLimits.parseByteCount("64k"), 64 << 10)
        XCTAssertEqual(ReadLimits.parseByteCount("1T"), 1 << 40)
        for bad in ["abc", "-5", "0", "", "G", "1.5G", "16GB", "99999999999T"] {
            XCTAssertNil(ReadLimits.parseByteCount(bad), bad)
        }
    }

    /// Before the fix an invalid value silently left the 4 GiB default.
    func testAnInvalidEnvironmentValueIsATypedOneLineError() throws {
        defer { unsetenv(ReadLimits.environmentVariable) }
        for bad in ["abc", "-5", "0", "16\n\u{1b}[2J"] {
            setenv(ReadLimits.environmentVariable, bad, 1)
            XCTAssertThrowsError(try ReadLimits.fromEnvironment(), bad) { error in
                XCTAssertEqual(error as? ReadLimitsError, .invalidEnvironmentValue(variable: "DINOKIT_READ_MEMORY_LIMIT", value: bad))
                let message = "\(error)"
                XCTAssertTrue(message.contains("DINOKIT_READ_MEMORY_LIMIT") && message.contains("16G"), message)
                XCTAssertFalse(message.unicodeScalars.contains { $0.properties.generalCategory == .control }, message)
            }
        }
        setenv(ReadLimits.environmentVariable, "2M", 1)
        XCTAssertEqual(try ReadLimits.fromEnvironment().memoryBytes, 2 << 20)
        unsetenv(ReadLimits.environmentVariable)
        XCTAssertEqual(try ReadLimits.fromEnvironment(), ReadLimits())
    }

    /// The command-line tool checks the variable at startup and exits 64 with the message
    /// (skipped when the `dinokit` binary was not built beside the test bundle).
    func testTheToolRefusesAnInvalidLimitAtStartup() throws {
        let tool = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("dinokit").path
        guard FileManager.default.isExecutableFile(atPath: tool) else { throw XCTSkip("no dinokit binary at \(tool)") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = ["inspect", fixturePath("npz/plain.npz")]
        process.environment = ["DINOKIT_READ_MEMORY_LIMIT": "abc"]
        let stderr = Pipe()
        process.standardError = stderr
        process.standardOutput = Pipe()
        try process.run()
        let message = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 64)
        XCTAssertEqual(message, "dinokit: error: DINOKIT_READ_MEMORY_LIMIT='abc' is not a size: give a positive number of bytes, "
            + "optionally with a K, M, G or T suffix (powers of 1024), e.g. 16G; or unset it for the 4 GiB default\n")
    }
}
