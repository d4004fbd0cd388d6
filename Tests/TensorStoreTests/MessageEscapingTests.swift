import TensorStore
import XCTest

final class MessageEscapingTests: XCTestCase {
    func testPrintableTextIsUnchanged() {
        XCTAssertEqual("blocks.3.attn.qkv.weight".escapedForMessage, "blocks.3.attn.qkv.weight")
        XCTAssertEqual("données/模型 🦖".escapedForMessage, "données/模型 🦖")
    }

    func testControlAndFormatCharactersAreEscaped() {
        XCTAssertEqual("a\nb\rc\td\0e".escapedForMessage, "a\\nb\\rc\\td\\0e")
        XCTAssertEqual("\u{1b}[31mred".escapedForMessage, "\\u{1b}[31mred")
        XCTAssertEqual("x\u{7f}\u{85}\u{202e}\u{2028}y".escapedForMessage, "x\\u{7f}\\u{85}\\u{202e}\\u{2028}y")
        XCTAssertEqual("a\\nb".escapedForMessage, "a\\\\nb", "a literal backslash stays distinguishable")
    }

    func testLongTextIsCutWithACount() {
        let long = String(repeating: "x", count: messageEscapingLimit + 10)
        let escaped = long.escapedForMessage
        XCTAssertTrue(escaped.hasPrefix(String(repeating: "x", count: messageEscapingLimit)))
        XCTAssertTrue(escaped.hasSuffix("…(10 more characters)"))
        XCTAssertFalse(escaped.contains("\n"))
    }
}
