import Formats
import TensorStore
import TestSupport
import XCTest

/// Reading a Fixtures/hostile checkpoint, shared by the hostile-input test classes: the file must
/// be refused with a `TorchCheckpointError` whose message is one line without control characters.

func hostileReadError(_ name: String, limits: ReadLimits = .default,
                      file: StaticString = #filePath, line: UInt = #line) -> TorchCheckpointError? {
    do {
        _ = try TorchCheckpoint.read(path: fixturePath("hostile/\(name)"), limits: limits)
        XCTFail("\(name) was accepted", file: file, line: line)
        return nil
    } catch let error as TorchCheckpointError {
        assertOneCleanLine(error.description, file: file, line: line)
        return error
    } catch {
        XCTFail("\(name): untyped error \(error)", file: file, line: line)
        return nil
    }
}

/// The pickle error inside a hostile checkpoint's refusal, with the archive part it came from.
func hostilePickleError(_ name: String, file: StaticString = #filePath, line: UInt = #line) -> (part: String, error: PickleError)? {
    guard let error = hostileReadError(name, file: file, line: line) else { return nil }
    guard case let .pickle(_, part, inner) = error else {
        XCTFail("\(name): \(error)", file: file, line: line)
        return nil
    }
    return (part, inner)
}

func assertOneCleanLine(_ message: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertFalse(message.isEmpty, file: file, line: line)
    let control = message.unicodeScalars.filter { $0.properties.generalCategory == .control }
    XCTAssertTrue(control.isEmpty, "control characters in: \(message.debugDescription)", file: file, line: line)
}
