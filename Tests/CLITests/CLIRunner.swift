import Foundation
import TestSupport
import XCTest

/// The built `dinokit` (swift build --build-tests builds it next to this test bundle).
let dinokitBinary = repositoryRoot + "/.build/debug/dinokit"

/// What one run of the binary printed, and its exit status.
struct CLIResult {
    var status: Int32
    var stdout: String
    var stderr: String

    /// stderr's non-empty lines.
    var errorLines: [String] { stderr.split(separator: "\n").map(String.init) }

    /// stdout as a JSON object.
    func json(file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(stdout.utf8))
        return try XCTUnwrap(object as? [String: Any], "stdout is not a JSON object: \(stdout)", file: file, line: line)
    }
}

/// Runs `dinokit arguments` in `directory` (default: the repository root), with `environment`
/// added to this process's, and waits for it.
func dinokit(_ arguments: [String], in directory: String = repositoryRoot, environment extra: [String: String] = [:]) throws -> CLIResult {
    guard FileManager.default.isExecutableFile(atPath: dinokitBinary) else {
        throw XCTSkip("\(dinokitBinary) is not built (swift build --build-tests)")
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: dinokitBinary)
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: directory)
    var environment = ProcessInfo.processInfo.environment
    environment["DINOKIT_NUM_THREADS"] = "1"
    environment.merge(extra) { $1 }
    process.environment = environment
    // Files rather than pipes: nothing can block on a full pipe, and no reader thread is needed.
    let folder = makeTemporaryDirectory("dinokit-cli-output")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let outPath = folder + "/stdout", errPath = folder + "/stderr"
    FileManager.default.createFile(atPath: outPath, contents: nil)
    FileManager.default.createFile(atPath: errPath, contents: nil)
    process.standardOutput = FileHandle(forWritingAtPath: outPath)
    process.standardError = FileHandle(forWritingAtPath: errPath)
    try process.run()
    process.waitUntilExit()
    let outData = FileManager.default.contents(atPath: outPath) ?? Data()
    let errData = FileManager.default.contents(atPath: errPath) ?? Data()
    return CLIResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                     stderr: String(decoding: errData, as: UTF8.self))
}

/// Asserts DinoKit's usage-error convention: exit 64, `dinokit: error: …` then one `hint: …`.
func assertUsageError(_ r: CLIResult, contains text: String, hint: String? = nil,
                      file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(r.status, 64, "status; stderr: \(r.stderr)", file: file, line: line)
    XCTAssertEqual(r.errorLines.count, 2, "two lines on stderr: \(r.stderr)", file: file, line: line)
    XCTAssertTrue(r.errorLines.first?.hasPrefix("dinokit: error: ") ?? false, r.stderr, file: file, line: line)
    XCTAssertTrue(r.errorLines.first?.contains(text) ?? false, "error line names '\(text)': \(r.stderr)", file: file, line: line)
    XCTAssertTrue(r.errorLines.last?.hasPrefix("hint: ") ?? false, r.stderr, file: file, line: line)
    if let hint { XCTAssertTrue(r.errorLines.last?.contains(hint) ?? false, "hint has '\(hint)': \(r.stderr)", file: file, line: line) }
}

/// Asserts the runtime-error convention: exit 1 and exactly one `dinokit: error: …` line.
func assertRuntimeError(_ r: CLIResult, contains text: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(r.status, 1, "status; stderr: \(r.stderr)", file: file, line: line)
    XCTAssertEqual(r.errorLines.count, 1, "one line on stderr: \(r.stderr)", file: file, line: line)
    XCTAssertTrue(r.errorLines.first?.hasPrefix("dinokit: error: ") ?? false, r.stderr, file: file, line: line)
    XCTAssertTrue(r.stderr.contains(text), "error names '\(text)': \(r.stderr)", file: file, line: line)
}
