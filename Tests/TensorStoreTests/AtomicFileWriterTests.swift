import Foundation
import TensorStore
import XCTest

/// AtomicFileWriter with files larger than its writeback chunk: bytes streamed from memory and
/// mapped tensors copied in-kernel must come out exactly, in order, and replace an existing target.
final class AtomicFileWriterTests: XCTestCase {
    private func temporaryDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("atomic-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    /// Deterministic bytes (an LCG, eight bytes a step), so no two chunks are alike.
    private func pattern(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        var words = [UInt64](repeating: 0, count: (count + 7) / 8)
        for i in words.indices {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            words[i] = state
        }
        return words.withUnsafeBytes { Array($0.prefix(count)) }
    }

    func testLargeWritesFromMemoryAndFromAMappedFileArriveIntact() throws {
        let dir = try temporaryDirectory()
        let chunk = AtomicFileWriter.writebackChunk
        // A source file to map: larger than two writeback chunks, not a multiple of any of them.
        let source = pattern(2 * chunk + 12_345, seed: 1)
        try AtomicFileWriter.write(to: dir + "/source.bin") { try $0.write(source) }
        let mapped = try MappedFile(path: dir + "/source.bin")
        let tensor = try Tensor(storage: Storage(file: mapped, offset: 3, length: source.count - 3), dtype: .u8,
                                shape: [source.count - 3])

        let head = pattern(chunk + 7, seed: 2), tail = pattern(999, seed: 3)
        let target = dir + "/out.bin"
        try Data("old contents".utf8).write(to: URL(fileURLWithPath: target))
        try AtomicFileWriter.write(to: target) { w in
            try w.write(head)
            try w.write(tensor)
            try w.write(tail)
            XCTAssertEqual(w.bytesWritten, head.count + source.count - 3 + tail.count)
        }
        // Data's == is a memcmp: element-wise comparison of ~25 MB takes seconds in a debug build.
        let written = try Data(contentsOf: URL(fileURLWithPath: target))
        XCTAssertEqual(written.count, head.count + source.count - 3 + tail.count)
        XCTAssertTrue(written == Data(head) + Data(source[3...]) + Data(tail), "bytes differ")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp-") }
        XCTAssertEqual(leftovers, [], "no temporary file left behind")
    }

    func testAnAbandonedLargeWriteLeavesTheTargetUntouched() throws {
        let dir = try temporaryDirectory()
        let target = dir + "/out.bin"
        try Data("old contents".utf8).write(to: URL(fileURLWithPath: target))
        struct Stop: Error {}
        XCTAssertThrowsError(try AtomicFileWriter.write(to: target) { w in
            try w.write(pattern(AtomicFileWriter.writebackChunk + 1, seed: 4)) // writeback already started
            throw Stop()
        })
        XCTAssertEqual(try String(contentsOfFile: target, encoding: .utf8), "old contents")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["out.bin"])
    }
}
