import Foundation
import Formats
import TensorStore
import TestSupport
import XCTest

/// Deferred storages (bytes computed when read: lazy dtype conversion) give the bytes the eager
/// operation gives, for any view and range; and a mapped file's pages are given back on request.
final class DeferredStorageTests: XCTestCase {
    /// Values that round differently in every narrow type (ties, subnormals, overflow, NaN).
    static let awkward: [Float] = [0, -0.0, 1, -1.5, 3.14159265, 1e-8, -6e-5, 65504, 65520, 1e30, .infinity, -.infinity, .nan,
                                   1.00390625, 1.01171875, 0x1.fffffep127, 0x1p-140]

    func testLazyConversionEqualsTheEagerOne() throws {
        var values = Self.awkward
        values += SyntheticInput.values(seed: 11, count: 4096 - values.count).map { $0 * 1000 }
        let source = try Tensor(shape: [64, 64], floats: values)
        for (from, to) in [(DType.f32, DType.bf16), (.f32, .f16), (.f32, .f64), (.f32, .f32)] {
            let input = try source.converted(to: from)
            let eager = try input.converted(to: to), lazy = try input.converting(to: to)
            XCTAssertTrue(lazy.bitwiseEqual(eager), "\(from) -> \(to)")
            if from != to { XCTAssertFalse(lazy.storage.isMapped) }
            // A view of the deferred tensor computes only its own range.
            let rows = try Tensor(storage: lazy.storage, dtype: to, shape: [5, 64], offset: 17 * 64)
            let expected = try Tensor(storage: eager.storage, dtype: to, shape: [5, 64], offset: 17 * 64)
            XCTAssertTrue(rows.bitwiseEqual(expected), "\(from) -> \(to) rows")
            // A strided view goes through the whole storage.
            let column = try Tensor(storage: lazy.storage, dtype: to, shape: [64], strides: [64], offset: 3)
            let expectedColumn = try Tensor(storage: eager.storage, dtype: to, shape: [64], strides: [64], offset: 3)
            XCTAssertTrue(column.bitwiseEqual(expectedColumn), "\(from) -> \(to) column")
        }
        // The store-wide conversion is lazy too, and leaves integer tensors alone.
        var store = TensorStore()
        try store.insert(source, named: "w")
        let ints = try Tensor(dtype: .i64, shape: [2], bytes: [Int64(3), 4].withUnsafeBytes { $0 })
        try store.insert(ints, named: "n")
        let converted = try store.converted(to: .bf16)
        XCTAssertTrue(try XCTUnwrap(converted["w"]).bitwiseEqual(try source.converted(to: .bf16)))
        XCTAssertTrue(try XCTUnwrap(converted["n"]).bitwiseEqual(ints))
        // The deferred bytes, kept once asked for as a pointer, are the same again.
        let lazy = try XCTUnwrap(converted["w"])
        let eager = try source.converted(to: .bf16)
        withExtendedLifetime(eager) { XCTAssertEqual(Array(lazy.storage.bytes), Array(eager.storage.bytes)) }
        XCTAssertTrue(lazy.bitwiseEqual(try source.converted(to: .bf16)))
    }

    func testAnUnsupportedConversionFailsWhenAsked() throws {
        let t = try Tensor(dtype: .f8e4m3, shape: [4], bytes: [UInt8](repeating: 0x38, count: 4).withUnsafeBytes { $0 })
        XCTAssertThrowsError(try t.converting(to: .f32)) { error in
            XCTAssertEqual(error as? TensorStoreError, .unsupportedConversion(from: .f8e4m3, to: .f32))
        }
    }

    /// Writing a converted store reads each tensor once, through memory freed after it.
    func testAConvertedStoreWritesTheEagerBytes() throws {
        let dir = makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var store = TensorStore()
        for i in 0..<4 {
            try store.insert(try SyntheticInput.tensor(seed: UInt32(i + 1), shape: [33, 17]), named: "t\(i)")
        }
        try Safetensors.write(store, to: dir + "/a.safetensors")
        let mapped = try Safetensors.read(path: dir + "/a.safetensors")
        var eager = TensorStore()
        for (name, t) in store.tensors { try eager.insert(try t.converted(to: .bf16), named: name) }
        try Safetensors.write(try mapped.converted(to: .bf16), to: dir + "/lazy.safetensors")
        try Safetensors.write(eager, to: dir + "/eager.safetensors")
        XCTAssertEqual(FileManager.default.contents(atPath: dir + "/lazy.safetensors"),
                       FileManager.default.contents(atPath: dir + "/eager.safetensors"))
    }

    #if os(Linux)
    /// Pages of a mapped file read by the process count in its resident set until they are given
    /// back; reading them again afterwards gives the same bytes.
    func testDroppedPagesLeaveTheResidentSetAndReadTheSameAgain() throws {
        let dir = makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let count = 64 << 20
        var bytes = [UInt8](repeating: 0, count: count)
        for i in stride(from: 0, to: count, by: 4096) { bytes[i] = UInt8(truncatingIfNeeded: i >> 12) }
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/big.bin"))
        let file = try MappedFile(path: dir + "/big.bin")
        let storage = try Storage(file: file, offset: 0, length: count)
        func touch() -> Int { storage.withBytes { raw in stride(from: 0, to: count, by: 4096).reduce(0) { $0 &+ Int(raw[$1]) } } }
        let before = residentFileBytes()
        let sum = touch()
        let touched = residentFileBytes()
        XCTAssertGreaterThan(touched - before, count / 2, "reading the mapping made it resident")
        storage.dropResidentPages()
        XCTAssertLessThan(residentFileBytes() - before, count / 8, "dropped pages left the resident set")
        XCTAssertEqual(touch(), sum)
    }

    /// RssFile of /proc/self/status, in bytes.
    func residentFileBytes() -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("RssFile:") } ?? ""
        return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
    }
    #endif
}
