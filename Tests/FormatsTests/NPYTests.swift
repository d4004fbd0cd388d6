import Foundation
import Formats
import TensorStore
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// .npy files written by NumPy (Scripts/fixtures/npy.py): values are 0.5 * arange(n) - 3.
final class NPYTests: XCTestCase {
    func formula(_ n: Int) -> [Float] { (0..<n).map { 0.5 * Float($0) - 3 } }

    func testReadsEveryDTypeAndLayoutNumPyWrites() throws {
        let cases: [(String, DType, [Int])] = [
            ("f32_2x3", .f32, [2, 3]), ("f32_fortran_3x4", .f32, [3, 4]), ("f32_bigendian_5", .f32, [5]),
            ("f16_4", .f16, [4]), ("f64_2x2", .f64, [2, 2]),
        ]
        for (name, dtype, shape) in cases {
            let t = try NPY.read(path: fixturePath("npy/\(name).npy"))
            XCTAssertEqual(t.dtype, dtype, name)
            XCTAssertEqual(t.shape.dims, shape, name)
            XCTAssertEqual(t.floats(), formula(shape.reduce(1, *)), name)
        }
        let ints = try NPY.read(path: fixturePath("npy/i64_6.npy"))
        XCTAssertEqual(ints.withContiguousBytes { Array($0.bindMemory(to: Int64.self)) }, (0..<6).map { Int64($0) * 1_000_003 - 7 })
        let bools = try NPY.read(path: fixturePath("npy/bool_2x3.npy"))
        XCTAssertEqual(bools.dtype, .bool)
        XCTAssertEqual(bools.floats(), [1, 0, 1, 0, 0, 1])
        let scalar = try NPY.read(path: fixturePath("npy/f32_scalar.npy"))
        XCTAssertEqual(scalar.shape.rank, 0)
        XCTAssertEqual(scalar.floats(), [2.5])
        let empty = try NPY.read(path: fixturePath("npy/f32_empty_0x3.npy"))
        XCTAssertEqual(empty.shape.dims, [0, 3])
        XCTAssertEqual(empty.floats(), [])
    }

    func testMappedReadDoesNotCopy() throws {
        let t = try NPY.read(path: fixturePath("npy/f32_2x3.npy"))
        XCTAssertTrue(t.storage.isMapped)
    }

    func testWriteProducesNumPysExactBytes() throws {
        // NumPy's own file for a C-order float32 array is the byte-exact target.
        for name in ["f32_2x3", "f16_4", "f64_2x2", "i64_6", "bool_2x3", "f32_scalar", "f32_empty_0x3"] {
            let path = fixturePath("npy/\(name).npy")
            let original = try MappedFile(path: path)
            let encoded = try NPY.encode(NPY.read(path: path))
            XCTAssertEqual(encoded, withExtendedLifetime(original) { Array(original.bytes) }, name)
        }
    }

    func testAtomicWriteRoundTrip() throws {
        let dir = makeTemporaryDirectory()
        let t = try NPY.read(path: fixturePath("npy/f32_fortran_3x4.npy"))
        try NPY.write(t, to: dir + "/out.npy")
        XCTAssertTrue(try NPY.read(path: dir + "/out.npy").bitwiseEqual(t))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["out.npy"])
    }

    func testCorruptHeadersGiveTypedErrors() throws {
        let file = try MappedFile(path: fixturePath("npy/f32_2x3.npy"))
        let good = withExtendedLifetime(file) { Array(file.bytes) }
        func decode(_ bytes: [UInt8]) -> NPYError? {
            do { _ = try bytes.withUnsafeBytes { try NPY.decode($0, name: "x.npy") }; return nil } catch { return error as? NPYError }
        }
        XCTAssertEqual(decode(Array("not numpy at all".utf8)), .notNPY("x.npy"))
        guard case .truncated? = decode(Array(good.dropLast(4))) else { return XCTFail("truncated data accepted") }
        var badDType = good
        let f4 = Array("<f4".utf8)
        let at = (0..<(good.count - 3)).first { Array(good[$0..<($0 + 3)]) == f4 }!
        badDType[at + 1] = UInt8(ascii: "c") // '<c4' is not a dtype DinoKit reads
        guard case .unsupportedDType? = decode(badDType) else { return XCTFail("complex dtype accepted") }
        var hugeShape = good
        hugeShape.replaceSubrange(10..<good.count, with: Array("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }".utf8))
        hugeShape[8] = UInt8(hugeShape.count - 10)
        guard case .badHeader? = decode(hugeShape) else { return XCTFail("overflowing shape accepted") }
        var bigShape = hugeShape
        bigShape.replaceSubrange(10..<bigShape.count, with: Array("{'descr': '<f4', 'fortran_order': False, 'shape': (4096, 4096), }".utf8))
        bigShape[8] = UInt8(bigShape.count - 10)
        guard case .truncated? = decode(bigShape) else { return XCTFail("shape larger than the data accepted") }
    }

    /// Issue 15: header text (newlines, terminal escapes, binary) was echoed raw into the
    /// one-line error.
    func testHeaderTextIsEscapedInErrors() throws {
        func message(_ header: String) -> String {
            var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, 0, 0]
            bytes += Array(header.utf8)
            bytes[8] = UInt8(bytes.count - 10)
            do { _ = try bytes.withUnsafeBytes { try NPY.decode($0, name: "x\n.npy") }; return "" } catch { return "\(error)" }
        }
        for header in ["{'descr': '<f4\n\u{1B}[2J', 'fortran_order': False, 'shape': (2,), }\n",
                       "\u{1B}]0;owned\u{07}\n{'descr'}", "{'descr': '\u{0}\u{1}\u{7F}', 'fortran_order': False, 'shape': (), }"] {
            let text = message(header)
            XCTAssertFalse(text.isEmpty)
            XCTAssertFalse(text.unicodeScalars.contains { $0.properties.generalCategory == .control }, text)
            XCTAssertTrue(text.hasPrefix("x\\n.npy: "), text)
        }
    }

    /// Issue 15: a FIFO named as an .npy (a golden file) blocked in open.
    func testAFIFOIsRefusedByNPYAndNPZ() throws {
        let dir = makeTemporaryDirectory("npy-fifo")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for name in ["a.npy", "b.npz"] { XCTAssertEqual(mkfifo(dir + "/" + name, 0o644), 0) }
        @Sendable func readAll() {
            XCTAssertThrowsError(try NPY.read(path: dir + "/a.npy"))
            XCTAssertThrowsError(try NPZ.read(path: dir + "/b.npz")) { XCTAssertTrue("\($0)".contains("FIFO"), "\($0)") }
            XCTAssertThrowsError(try Checkpoint.read(path: dir + "/b.npz"))
        }
        let done = expectation(description: "readers return")
        Thread { readAll(); done.fulfill() }.start()
        wait(for: [done], timeout: 10)
    }
}
