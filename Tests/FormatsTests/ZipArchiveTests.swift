import Formats
import Foundation
import TensorStore
import TestSupport
import XCTest

/// The central-directory reader against the entries Python's zipfile reports for the fixtures, and
/// the zip writer against the reader and torch's layout rules.
final class ZipArchiveTests: XCTestCase {
    func testEntriesMatchPythonsZipfile() throws {
        let names = PthExpected.zipEntryFixtures
        XCTAssertGreaterThan(names.count, 15)
        for name in names {
            let archive = try ZipArchive(path: fixturePath("pth/\(name)"))
            let expected = try PthExpected.entries(name)
            XCTAssertEqual(archive.entries.map(\.name), expected.map(\.name), name)
            for (e, x) in zip(archive.entries, expected) {
                XCTAssertEqual(Int(e.method), x.method, "\(name) \(e.name)")
                XCTAssertEqual(e.localHeaderOffset, x.headerOffset, "\(name) \(e.name)")
                XCTAssertEqual(e.dataOffset, x.dataOffset, "\(name) \(e.name)")
                XCTAssertEqual(e.uncompressedSize, x.size, "\(name) \(e.name)")
                XCTAssertEqual(e.compressedSize, x.compressedSize, "\(name) \(e.name)")
                XCTAssertEqual(e.crc32, x.crc32, "\(name) \(e.name)")
                // The bytes we hand out are the member's: their CRC is the one zipfile recorded.
                let storage = try archive.storage(for: e)
                withExtendedLifetime(storage) { XCTAssertEqual(ZipCRC32.checksum(storage.bytes), x.crc32, "\(name) \(e.name)") }
            }
        }
    }

    func testStoredMembersAreMappedAndTorchAlignsThem() throws {
        let archive = try ZipArchive(path: fixturePath("pth/dtype-f64.pth"))
        for e in archive.entries {
            XCTAssertTrue(e.isStored)
            XCTAssertTrue(try archive.storage(for: e).isMapped)
            XCTAssertEqual(e.dataOffset % 64, 0, "torch aligns every record to 64 bytes")
        }
    }

    func testZip64ExtraFieldsAndDeflatedMembers() throws {
        let z64 = try ZipArchive(path: fixturePath("pth/zip64.pth"))
        XCTAssertTrue(z64.entries.allSatisfy { $0.isStored })
        let deflated = try ZipArchive(path: fixturePath("pth/deflated.pth"))
        let a = try XCTUnwrap(deflated.entry(named: "deflated/data/0"))
        XCTAssertEqual(a.method, 8)
        let s = try deflated.storage(for: a)
        XCTAssertFalse(s.isMapped)
        XCTAssertEqual(s.count, 64 * 8 * 4)
        withExtendedLifetime(s) { XCTAssertTrue(s.bytes.allSatisfy { $0 == 0 }) }
    }

    func testCRC32CheckValue() {
        // The standard check value of CRC-32/ISO-HDLC for "123456789".
        XCTAssertEqual(Array("123456789".utf8).withUnsafeBytes { ZipCRC32.checksum($0) }, 0xCBF4_3926)
        var c = ZipCRC32()
        c.update(Array("12345".utf8))
        c.update(Array("6789".utf8))
        XCTAssertEqual(c.value, 0xCBF4_3926)
    }

    func writeZip(_ members: [(String, [UInt8])], to path: String) throws {
        try AtomicFileWriter.write(to: path) { output in
            var zip = ZipWriter(output: output)
            for (name, bytes) in members { try zip.addStored(name: name, bytes: bytes) }
            try zip.finish()
        }
    }

    func testWriterOutputReadsBackAligned() throws {
        let dir = makeTemporaryDirectory("zip-writer")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rng = SyntheticInput(seed: 9)
        let members: [(String, [UInt8])] = [("a/x", []), ("a/ünï", [1, 2, 3]),
                                             ("a/big", (0..<10_001).map { _ in UInt8(truncatingIfNeeded: rng.nextState() >> 24) })]
        let path = "\(dir)/w.zip"
        try writeZip(members, to: path)
        let archive = try ZipArchive(path: path)
        XCTAssertEqual(archive.entries.map(\.name), members.map(\.0))
        for (e, (_, bytes)) in zip(archive.entries, members) {
            XCTAssertEqual(try archive.contents(of: e), bytes)
            XCTAssertEqual(e.dataOffset % 64, 0)
        }
        XCTAssertThrowsError(try AtomicFileWriter.write(to: "\(dir)/dup.zip") { output in
            var zip = ZipWriter(output: output)
            try zip.addStored(name: "x", bytes: [1])
            try zip.addStored(name: "x", bytes: [2])
        }) { XCTAssertEqual($0 as? ZipError, .duplicateEntry(path: "\(dir)/dup.zip", name: "x")) }
    }

    func testHostileArchivesAreRefusedByName() throws {
        XCTAssertThrowsError(try ZipArchive(path: fixturePath("hostile/pth-truncated.pth"))) { error in
            guard case let .notAZip(_, detail) = error as? ZipError else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("end-of-central-directory"))
        }
        XCTAssertThrowsError(try ZipArchive(path: fixturePath("hostile/pth-cd-outside.pth"))) { error in
            guard case .outOfBounds = error as? ZipError else { return XCTFail("\(error)") }
        }
    }

    /// Damage a valid archive in the ways a hostile file would: every case is a typed error.
    func testDamagedDirectoriesGiveTypedErrors() throws {
        let dir = makeTemporaryDirectory("zip-damage")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let good = "\(dir)/good.zip"
        try writeZip([("r/a", [1, 2, 3, 4]), ("r/b", Array(repeating: 7, count: 100))], to: good)
        let bytes = try XCTUnwrap(FileManager.default.contents(atPath: good)).map { $0 }
        let archive = try ZipArchive(path: good)
        let cdStart = try XCTUnwrap((0..<(bytes.count - 4)).first { bytes[$0] == 0x50 && bytes[$0 + 1] == 0x4B && bytes[$0 + 2] == 1 && bytes[$0 + 3] == 2 })

        func damaged(_ label: String, _ edit: (inout [UInt8]) -> Void, check: (ZipError) -> Bool) throws {
            var b = bytes
            edit(&b)
            let path = "\(dir)/\(label).zip"
            _ = FileManager.default.createFile(atPath: path, contents: Data(b))
            XCTAssertThrowsError(try ZipArchive(path: path), label) { error in
                guard let z = error as? ZipError else { return XCTFail("\(label): \(error)") }
                XCTAssertTrue(check(z), "\(label): \(z)")
            }
        }
        func put32(_ b: inout [UInt8], _ at: Int, _ v: UInt32) { for i in 0..<4 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) } }

        let first = archive.entries[0]
        try damaged("local-signature", { $0[first.localHeaderOffset] = 0 }) { if case .corrupt = $0 { return true }; return false }
        try damaged("local-offset-past-end", { put32(&$0, cdStart + 42, 0x7FFF_FFF0) }) { if case .outOfBounds = $0 { return true }; return false }
        try damaged("size-past-end", { put32(&$0, cdStart + 20, 0x7FFF_FFF0); put32(&$0, cdStart + 24, 0x7FFF_FFF0) }) {
            if case .outOfBounds = $0 { return true }; return false
        }
        try damaged("stored-size-mismatch", { put32(&$0, cdStart + 24, 5) }) { if case .corrupt = $0 { return true }; return false }
        try damaged("central-signature", { $0[cdStart] = 0 }) { if case .corrupt = $0 { return true }; return false }
        try damaged("method", { $0[cdStart + 10] = 12 }) { if case .unsupportedEntry = $0 { return true }; return false }
        try damaged("encrypted", { $0[cdStart + 8] |= 1 }) { if case .unsupportedEntry = $0 { return true }; return false }
        try damaged("name-mismatch", { $0[first.localHeaderOffset + 30] ^= 0x20 }) { if case .corrupt = $0 { return true }; return false }
        // The ZIP64 end record claims more entries than its directory can hold.
        let eocd64 = try XCTUnwrap((0..<(bytes.count - 4)).last { bytes[$0] == 0x50 && bytes[$0 + 1] == 0x4B && bytes[$0 + 2] == 6 && bytes[$0 + 3] == 6 })
        try damaged("count-lies", { put32(&$0, eocd64 + 32, 1_000_000) }) { if case .corrupt = $0 { return true }; return false }
        try damaged("not-zip", { $0 = Array(repeating: 0x41, count: 100) }) { if case .notAZip = $0 { return true }; return false }
    }

    /// Every truncation and a few thousand seeded byte flips of a torch file: typed errors or a
    /// parse, never a crash.
    func testTruncationsAndFlipsNeverCrash() throws {
        let dir = makeTemporaryDirectory("zip-fuzz")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bytes = try XCTUnwrap(FileManager.default.contents(atPath: fixturePath("pth/dtype-i8.pth"))).map { $0 }
        let path = "\(dir)/f.zip"
        var rng = SyntheticInput(seed: 1)
        var cases: [[UInt8]] = stride(from: 0, to: bytes.count, by: 7).map { Array(bytes.prefix($0)) }
        for _ in 0..<1500 {
            var b = bytes
            let n = Int(rng.nextState() % 4) + 1
            for _ in 0..<n { b[Int(rng.nextState() % UInt32(b.count))] = UInt8(truncatingIfNeeded: rng.nextState() >> 24) }
            cases.append(b)
        }
        for b in cases {
            _ = FileManager.default.createFile(atPath: path, contents: Data(b))
            do {
                let archive = try ZipArchive(path: path)
                for e in archive.entries { _ = try? archive.contents(of: e) }
            } catch is ZipError {
            } catch {
                XCTFail("untyped error \(error)")
            }
        }
    }
}
