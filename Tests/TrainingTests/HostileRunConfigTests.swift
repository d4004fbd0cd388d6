import Foundation
import TestSupport
import Training
import XCTest

/// Fuzzer-found run configs (Fixtures/hostile/yaml-*) and other hostile YAML: each is refused
/// with a typed one-line `SSLRunError.config` naming the file, quickly, without Yams' Constructor.
final class HostileRunConfigTests: XCTestCase {
    func configError(_ text: String, file: String, line: UInt = #line) -> String {
        let start = Date()
        defer { XCTAssertLessThan(Date().timeIntervalSince(start), 0.5, line: line) }
        do {
            _ = try SSLRunConfig.load(yaml: text, file: file)
            XCTFail("\(file) was accepted", line: line)
            return ""
        } catch let error as SSLRunError {
            guard case let .config(named, _) = error else { XCTFail("\(error)", line: line); return "" }
            XCTAssertEqual(named, file, line: line)
            XCTAssertFalse(error.description.contains("\n"), error.description, line: line)
            return error.description
        } catch {
            XCTFail("untyped error \(error)", line: line)
            return ""
        }
    }

    func fixture(_ name: String) throws -> String {
        try String(contentsOfFile: fixturePath("hostile/\(name)"), encoding: .utf8)
    }

    /// Issue 15, fuzz-run-config: nine levels of ten aliases name 10^9 values; `Yams.load`
    /// expanded them and hung.
    func testAliasBombIsRefusedAtItsFirstAnchor() throws {
        let message = configError(try fixture("yaml-alias-bomb.yaml"), file: "bomb.yaml")
        XCTAssertTrue(message.hasPrefix("bomb.yaml: line 1, column 4: YAML anchors (&name) are not accepted"), message)
    }

    /// An alias used as a mapping key: Yams' composer hashes keys, so this must be refused
    /// before composing, not after.
    func testAliasAsMappingKeyIsRefusedBeforeComposing() {
        let message = configError("? *a\n: 1\n", file: "key.yaml")
        XCTAssertTrue(message.contains("line 1, column 3: YAML aliases (*name) are not accepted"), message)
    }

    /// Issue 15, fuzz-run-config: `{[]}` (a list as a mapping key) trapped in Yams' Constructor
    /// (`String.construct(from: key)!`).
    func testNonStringMappingKeyIsATypedError() throws {
        let message = configError(try fixture("yaml-nonstring-key.yaml"), file: "key.yaml")
        XCTAssertEqual(message, "key.yaml: line 1, column 2: a mapping key is a list or mapping; setting names are plain words")
    }

    func testDeepNestingAndManyValuesAreRefused() {
        let deep = configError("epochs: " + String(repeating: "[", count: 500) + String(repeating: "]", count: 500), file: "deep.yaml")
        XCTAssertTrue(deep.contains("nested deeper than"), deep)
        let many = configError("freeze_blocks: [" + Array(repeating: "1", count: 20_000).joined(separator: ",") + "]", file: "many.yaml")
        XCTAssertTrue(many.contains("more than 10000 values"), many)
        let twice = configError("epochs: 1\nepochs: 2\n", file: "twice.yaml")
        XCTAssertTrue(twice.hasPrefix("twice.yaml: not valid YAML ("), twice)
    }

    func testYAMLSyntaxErrorIsOneLine() {
        let message = configError("epochs: [3\n", file: "broken.yaml")
        XCTAssertTrue(message.hasPrefix("broken.yaml: not valid YAML ("), message)
    }
}
