import Formats
import TensorStore
import TestSupport
import XCTest

/// Every validation rule of the reference safetensors reader, each with a hostile file
/// (Fixtures/hostile/safetensors-*, confirmed rejected by the reference reader when made) and the
/// specific error DinoKit must give, naming the tensor and the offending value.
final class HostileSafetensorsTests: XCTestCase {
    func read(_ name: String) -> (path: String, error: SafetensorsError?) {
        let path = fixturePath("hostile/safetensors-\(name).safetensors")
        do {
            _ = try Safetensors.read(path: path)
            return (path, nil)
        } catch let e as SafetensorsError {
            // Every message names the file.
            XCTAssertTrue(e.description.hasPrefix(path), e.description)
            return (path, e)
        } catch {
            XCTFail("\(name): unexpected error type \(error)")
            return (path, nil)
        }
    }

    func expect(_ name: String, _ expected: (String) -> SafetensorsError, file: StaticString = #filePath, line: UInt = #line) {
        let (path, error) = read(name)
        XCTAssertEqual(error, expected(path), name, file: file, line: line)
    }

    func testFileShorterThanTheLengthField() {
        expect("too-small") { .fileTooSmall(path: $0, size: 3) }
    }

    func testHeaderLengthOverTheLimit() {
        expect("huge-header") { .headerTooLarge(path: $0, length: 100_000_001) }
    }

    func testHeaderLengthBeyondTheFile() {
        expect("header-beyond-file") { .headerBeyondFile(path: $0, length: 4096, fileSize: 63) }
    }

    func testTruncatedData() {
        expect("truncated") { .bufferLengthMismatch(path: $0, tensor: "w", lastEnd: 16, bufferLength: 11) }
    }

    func testTrailingBytes() {
        expect("trailing-bytes") { .bufferLengthMismatch(path: $0, tensor: "w", lastEnd: 16, bufferLength: 24) }
    }

    func testLyingHeaderOffsetsPastTheEnd() {
        expect("lying-header") { .bufferLengthMismatch(path: $0, tensor: "w", lastEnd: 4096, bufferLength: 16) }
        let (_, error) = read("lying-header")
        XCTAssertTrue(error?.description.contains("past the end of the file") ?? false)
    }

    func testHeaderNotUTF8() {
        // {"w\xff... : the bad byte is the 4th of the header, after the 8-byte length.
        expect("not-utf8") { .headerNotUTF8(path: $0, byteOffset: 8 + 3) }
    }

    func testHeaderNotAnObject() {
        expect("not-object") { .headerNotObject(path: $0, found: "an array") }
    }

    func testInvalidJSON() {
        guard case let .invalidJSON(_, offset, message)? = read("invalid-json").error else {
            return XCTFail("expected invalidJSON")
        }
        XCTAssertEqual(offset, 8 + 55, "at the '}' after the trailing comma")
        XCTAssertTrue(message.contains("member name"), message)
    }

    func testDeepNestingIsBounded() {
        guard case let .invalidJSON(_, _, message)? = read("deep-nesting").error else {
            return XCTFail("expected invalidJSON")
        }
        XCTAssertTrue(message.contains("nesting deeper than 128"), message)
    }

    func testMetadataWithANumber() {
        expect("metadata-number") { .invalidMetadata(path: $0, key: "epoch", detail: "value is a number, not a string") }
    }

    func testTensorNamedMetadata() {
        expect("metadata-tensor") { .metadataNamedTensor(path: $0) }
    }

    func testDuplicateName() {
        // The reference reader keeps one of the two silently; DinoKit refuses the ambiguity.
        expect("duplicate-name") { .duplicateName(path: $0, tensor: "w") }
    }

    func testUnknownDType() {
        expect("unknown-dtype") { .unknownDType(path: $0, tensor: "w", dtype: "F4") }
    }

    func testShapeEntriesMustBeNonNegativeIntegers() {
        expect("negative-shape") { .invalidShape(path: $0, tensor: "w", value: "-4") }
        expect("fractional-shape") { .invalidShape(path: $0, tensor: "w", value: "4.0") }
    }

    func testDataOffsetsMustBeAPair() {
        expect("three-offsets") { .invalidDataOffsets(path: $0, tensor: "w", detail: "has more than two entries") }
    }

    func testOverlappingOffsets() {
        expect("overlap") { .overlap(path: $0, tensor: "b", begin: 8, previous: "a", previousEnd: 12) }
    }

    func testGapBetweenTensors() {
        expect("gap") { .gap(path: $0, tensor: "b", begin: 8, previous: "a", previousEnd: 4) }
    }

    func testFirstTensorNotAtZero() {
        expect("first-not-zero") { .firstOffsetNotZero(path: $0, tensor: "a", begin: 4) }
    }

    func testEndBeforeBegin() {
        expect("end-before-begin") { .endBeforeBegin(path: $0, tensor: "b", begin: 16, end: 8) }
    }

    func testSpanDoesNotMatchShape() {
        expect("wrong-span") { .spanMismatch(path: $0, tensor: "w", span: 16, expected: 24, shape: [2, 3], dtype: "F32") }
    }

    func testShapeProductOverflowIsCaught() {
        expect("overflow-shape") { .sizeOverflow(path: $0, tensor: "w", shape: [1 << 62, 4], dtype: "F32") }
    }

    // MARK: header corners built in memory

    func parse(_ json: String, data: Int = 0) -> Error? {
        let text = Array(json.utf8)
        var bytes = withUnsafeBytes(of: UInt64(text.count).littleEndian, Array.init) + text
        bytes += [UInt8](repeating: 0, count: data)
        do {
            _ = try bytes.withUnsafeBytes { try SafetensorsHeader.parse($0, fileSize: bytes.count, path: "mem") }
            return nil
        } catch {
            return error
        }
    }

    func jsonMessage(_ json: String) -> String? {
        if case let .invalidJSON(_, _, message)? = parse(json) as? SafetensorsError { return message }
        return nil
    }

    func assertJSONError(_ json: String, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        guard case let .invalidJSON(_, _, message)? = parse(json) as? SafetensorsError else {
            return XCTFail("\(json): expected invalidJSON, got \(String(describing: parse(json)))", file: file, line: line)
        }
        XCTAssertTrue(message.contains(fragment), "\(json): \(message)", file: file, line: line)
    }

    func testStrictJSON() {
        assertJSONError(#"{"a\ud800":{}}"#, "unpaired surrogate")
        assertJSONError(#"{"a\udc00":{}}"#, "unpaired surrogate")
        assertJSONError("{\"a\u{1}\":{}}", "control character")
        assertJSONError(#"{"a":{"dtype":"F32","shape":[01],"data_offsets":[0,4]}}"#, "leading zero")
        assertJSONError(#"{"a":{"dtype":"F32","shape":[1,],"data_offsets":[0,4]}}"#, "expected a value")
        assertJSONError(#"{"a":{"dtype":"F32","shape":[1 2],"data_offsets":[0,4]}}"#, "',' or ']'")
        assertJSONError(#"{"a" {}}"#, "':'")
        assertJSONError(#"{} x"#, "trailing")
        assertJSONError(#"{"a":{"x":tru}}"#, "invalid literal")
        assertJSONError(#"{"a":{"x":"\q"}}"#, "invalid escape")
        assertJSONError(#"{"a":{"x":1.}}"#, "no digits after")
        assertJSONError(#"{"a":{"x":"unterminated}}"#, "unterminated")
        assertJSONError("", "end of text")
    }

    func testHeaderCornersTheReferenceAccepts() throws {
        // Escaped names (incl. a surrogate pair), leading whitespace, unknown fields, null metadata.
        let text = Array(#"  {"\ud83d\ude00\n":{"dtype":"U8","shape":[2],"data_offsets":[0,2],"x":[{"y":null},true,-1.5e3]},"__metadata__":null}"#.utf8)
        let bytes = withUnsafeBytes(of: UInt64(text.count).littleEndian, Array.init) + text + [7, 9]
        let header = try bytes.withUnsafeBytes { try SafetensorsHeader.parse($0, fileSize: bytes.count, path: "mem") }
        XCTAssertEqual(header.entries.map(\.name), ["\u{1F600}\n"])
        XCTAssertEqual(header.entries.first?.dataOffsets, 0..<2)
        XCTAssertTrue(header.metadata.isEmpty)
        // Empty tensors may share an offset with the next tensor; 0-rank tensors hold one element.
        XCTAssertNil(parse(#"{"e":{"dtype":"F64","shape":[0,5],"data_offsets":[0,0]},"s":{"dtype":"I16","shape":[],"data_offsets":[0,2]}}"#, data: 2))
    }

    func testMoreHeaderRules() {
        func error(_ json: String, data: Int = 4) -> SafetensorsError? { parse(json, data: data) as? SafetensorsError }
        XCTAssertEqual(error(#"{"a":[1]}"#), .invalidTensorEntry(path: "mem", tensor: "a", detail: "expected an object with dtype, shape and data_offsets, found an array"))
        XCTAssertEqual(error(#"{"a":{"dtype":"F32","shape":[1]}}"#), .invalidTensorEntry(path: "mem", tensor: "a", detail: "missing field 'data_offsets'"))
        XCTAssertEqual(error(#"{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#),
                       .invalidTensorEntry(path: "mem", tensor: "a", detail: "field 'dtype' appears more than once"))
        XCTAssertEqual(error(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}"#), .invalidDataOffsets(path: "mem", tensor: "a", detail: "has 1 entries"))
        XCTAssertEqual(error(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,-4]}}"#), .invalidDataOffsets(path: "mem", tensor: "a", detail: "holds -4"))
        XCTAssertEqual(error(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551615]}}"#),
                       .invalidDataOffsets(path: "mem", tensor: "a", detail: "holds 18446744073709551615, larger than any file"))
        XCTAssertEqual(error(#"{"a":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,4]}}"#),
                       .invalidShape(path: "mem", tensor: "a", value: "18446744073709551616"))
        XCTAssertEqual(error(#"{"a":{"dtype":"F32","shape":[9223372036854775808,0],"data_offsets":[0,0]}}"#, data: 0),
                       .sizeOverflow(path: "mem", tensor: "a", shape: [1 << 63, 0], dtype: "F32"))
        XCTAssertEqual(error(#"{"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}"#), .unknownDType(path: "mem", tensor: "a", dtype: "f32"))
        XCTAssertEqual(error(#"{"__metadata__":"x"}"#, data: 0), .invalidMetadata(path: "mem", key: nil, detail: "expected an object, found a string"))
        XCTAssertEqual(error(#"{"__metadata__":{"k":"1","k":"2"}}"#, data: 0), .duplicateMetadataKey(path: "mem", key: "k"))
        XCTAssertEqual(error(#"{"__metadata__":{},"__metadata__":{}}"#, data: 0), .invalidMetadata(path: "mem", key: nil, detail: "appears more than once"))
        XCTAssertEqual(error("{}", data: 0), nil)
        XCTAssertEqual(error("{}", data: 1), .bufferLengthMismatch(path: "mem", tensor: nil, lastEnd: 0, bufferLength: 1))
    }

    func testEveryErrorMessageNamesTheTensorAndValue() {
        let (_, overlap) = read("overlap")
        let text = overlap?.description ?? ""
        for fragment in ["'b'", "8", "'a'", "12"] { XCTAssertTrue(text.contains(fragment), text) }
        let (_, span) = read("wrong-span")
        XCTAssertTrue(span?.description.contains("[2, 3]") ?? false)
        XCTAssertTrue(span?.description.contains("24") ?? false)
    }
}
