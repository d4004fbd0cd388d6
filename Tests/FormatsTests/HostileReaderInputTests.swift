import Foundation
import Formats
import TensorStore
import TestSupport
import XCTest

/// The classes fixed once for the .pth readers, checked in the other readers (safetensors, NPY,
/// HF folders): input-driven recursion, arithmetic on sizes from the file, allocations the file
/// decides, names echoed into messages. Inputs are made here, each a few bytes or one megabyte.
final class HostileReaderInputTests: XCTestCase {
    var dir = ""

    override func setUp() { dir = makeTemporaryDirectory("hostile-readers") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func write(_ bytes: [UInt8], _ name: String) throws -> String {
        let path = dir + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// A safetensors file whose header is `json` (padded with spaces as the format allows).
    func safetensors(_ json: String, data: [UInt8] = []) -> [UInt8] {
        let header = Array(json.utf8)
        return withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header + data
    }

    func assertOneLine(_ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(message.unicodeScalars.contains { $0.properties.generalCategory == .control }, message, file: file, line: line)
    }

    /// One megabyte of `[` (within the 100 MB header limit): the strict JSON reader counts depth
    /// before it recurses, so this is a typed error at depth 129, not a stack overflow.
    func testAMegabyteOfNestedArraysIsATypedError() throws {
        let brackets = String(repeating: "[", count: 1 << 20)
        let path = try write(safetensors("{\"w\": {\"x\": " + brackets), "deep.safetensors")
        XCTAssertThrowsError(try Safetensors.read(path: path)) { error in
            guard case let .invalidJSON(_, _, message)? = error as? SafetensorsError else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("nesting deeper than 128"), message)
            assertOneLine("\(error)")
        }
        // config.json of an HF folder goes through the same reader (skipValue on a nested value).
        let folder = dir + "/hf"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        // (config.json may hold 1 MiB: a little less than that of brackets.)
        try Data(("{\"t\": " + brackets.dropFirst(16)).utf8).write(to: URL(fileURLWithPath: folder + "/config.json"))
        try Data(safetensors("{}")).write(to: URL(fileURLWithPath: folder + "/model.safetensors"))
        XCTAssertThrowsError(try HFFolder.read(path: folder)) { error in
            guard case let .badConfig(_, reason)? = error as? HFFolderError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("nesting deeper than 128"), reason)
        }
    }

    /// Tensor names, dtypes and metadata keys come from the header: before the fix a duplicate
    /// name with a newline and a terminal escape was printed raw.
    func testSafetensorsNamesAreEscapedInMessages() throws {
        let name = "evil\\n\\u001b[2J"
        let cases: [(String, String)] = [
            ("{\"\(name)\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [0, 4]}, \"\(name)\": {}}", "appears more than once"),
            ("{\"\(name)\": {\"dtype\": \"F\\u0007\", \"shape\": [], \"data_offsets\": [0, 4]}}", "unknown dtype 'F\\u{7}'"),
            ("{\"__metadata__\": {\"\(name)\": 1}}", "__metadata__ entry"),
        ]
        for (json, fragment) in cases {
            let path = try write(safetensors(json, data: [0, 0, 0, 0]), "names.safetensors")
            XCTAssertThrowsError(try Safetensors.read(path: path)) { error in
                XCTAssertTrue(error is SafetensorsError, "\(error)")
                let message = "\(error)"
                assertOneLine(message)
                XCTAssertTrue(message.contains(fragment), message)
                XCTAssertTrue(message.contains("evil\\n\\u{1b}[2J"), message)
            }
        }
    }

    /// The JSON reader's own messages quote bytes of the header: a backslash followed by ESC
    /// used to put the raw ESC into "invalid escape '\<ESC>'".
    func testInvalidEscapeMessagesAreOneLine() throws {
        let path = try write(safetensors("{\"a\\\u{1b}[2J\": {}}"), "escape.safetensors")
        XCTAssertThrowsError(try Safetensors.read(path: path)) { error in
            guard case let .invalidJSON(_, _, message)? = error as? SafetensorsError else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("byte 0x1b"), message)
            assertOneLine("\(error)")
        }
    }

    /// Index names come from the file too.
    func testShardIndexNamesAreEscapedInMessages() throws {
        let folder = dir + "/sharded"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        try Data("{}".utf8).write(to: URL(fileURLWithPath: folder + "/config.json"))
        let index = "{\"weight_map\": {\"a\\u001b[2J\": \"x\", \"a\\u001b[2J\": \"y\"}}"
        try Data(index.utf8).write(to: URL(fileURLWithPath: folder + "/model.safetensors.index.json"))
        XCTAssertThrowsError(try HFFolder.read(path: folder)) { error in
            guard case .badIndex? = error as? HFFolderError else { return XCTFail("\(error)") }
            assertOneLine("\(error)")
            XCTAssertTrue("\(error)".contains("'a\\u{1b}[2J' listed twice"), "\(error)")
        }
    }

    /// The shards of one folder are one read: what they make DinoKit allocate (here copies of
    /// misaligned data) adds up against one limit, not one limit per shard.
    func testShardsOfAFolderShareOneMemoryBudget() throws {
        let folder = dir + "/sharded-budget"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        try Data("{}".utf8).write(to: URL(fileURLWithPath: folder + "/config.json"))
        for name in ["a", "b"] {
            // A 69-byte header puts the data at byte 77, not a multiple of 4: 1024 bytes are copied.
            var json = "{\"\(name)\": {\"dtype\": \"F32\", \"shape\": [256], \"data_offsets\": [0, 1024]}}"
            json += String(repeating: " ", count: 69 - json.utf8.count)
            _ = try write(safetensors(json, data: [UInt8](repeating: 0, count: 1024)), "sharded-budget/\(name).safetensors")
        }
        let index = "{\"weight_map\": {\"a\": \"a.safetensors\", \"b\": \"b.safetensors\"}}"
        try Data(index.utf8).write(to: URL(fileURLWithPath: folder + "/model.safetensors.index.json"))
        let limits = ReadLimits(memoryBytes: 1500)
        XCTAssertNoThrow(try Safetensors.read(path: folder + "/a.safetensors", limits: limits), "one shard fits")
        XCTAssertThrowsError(try HFFolder.read(path: folder, limits: limits)) { error in
            guard case .store(_, .memoryLimitExceeded(_, 1024, 1500))? = error as? SafetensorsError else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("tensor 'b'"), "\(error)")
        }
        XCTAssertEqual(try HFFolder.read(path: folder, limits: ReadLimits(memoryBytes: 2048)).count, 2)
    }

    /// A tensor whose data is not aligned for its dtype is copied out of the mapping: charged.
    func testMisalignedCopiesAreChargedToTheReadsMemoryLimit() throws {
        // A 69-byte header puts the data at byte 77, not a multiple of 4.
        var json = "{\"w\": {\"dtype\": \"F32\", \"shape\": [256], \"data_offsets\": [0, 1024]}}"
        json += String(repeating: " ", count: 69 - json.utf8.count)
        let path = try write(safetensors(json, data: [UInt8](repeating: 0, count: 1024)), "misaligned.safetensors")
        XCTAssertEqual(try Safetensors.read(path: path)["w"]?.storage.isMapped, false)
        XCTAssertThrowsError(try Safetensors.read(path: path, limits: ReadLimits(memoryBytes: 1000))) { error in
            guard case .store(_, .memoryLimitExceeded(_, 1024, 1000))? = error as? SafetensorsError else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("tensor 'w'"), "\(error)")
        }
    }

    /// Shards are listed once each in index order: 100,000 distinct shard names used to be
    /// searched in an array (5 × 10^9 comparisons); now the first missing shard is reported at once.
    func testAnIndexOfManyShardsIsReadInLinearTime() throws {
        let folder = dir + "/many"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        try Data("{}".utf8).write(to: URL(fileURLWithPath: folder + "/config.json"))
        let entries = (0..<100_000).map { "\"t\($0)\": \"s\($0).safetensors\"" }.joined(separator: ", ")
        try Data("{\"weight_map\": {\(entries)}}".utf8).write(to: URL(fileURLWithPath: folder + "/model.safetensors.index.json"))
        let start = Date()
        XCTAssertThrowsError(try HFFolder.read(path: folder)) { error in
            XCTAssertTrue("\(error)".contains("s0.safetensors"), "\(error)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 20, "reading the shard index is super-linear")
    }

    /// NPY Fortran-order strides are products of the dimensions, which an empty shape does not
    /// bound: (0, 2^40, 2^40, 2^40) has 0 elements but its last stride is 2^80. Before the fix
    /// this trapped on overflow.
    func testFortranStridesOfAnEmptyHugeShapeAreATypedError() throws {
        let dict = "{'descr': '<f4', 'fortran_order': True, 'shape': (0, 1099511627776, 1099511627776, 1099511627776), }"
        let header = dict + String(repeating: " ", count: (64 - (10 + dict.utf8.count + 1) % 64) % 64) + "\n"
        let npy: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count), 0] + Array(header.utf8)
        let path = try write(npy, "fortran.npy")
        XCTAssertThrowsError(try NPY.read(path: path)) { error in
            guard case let .badHeader(_, why)? = error as? NPYError else { return XCTFail("\(error)") }
            XCTAssertTrue(why.contains("Fortran-order strides"), why)
        }
    }
}
