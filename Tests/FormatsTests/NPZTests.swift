import Foundation
import Formats
import TensorStore
import TestSupport
import XCTest

/// .npz archives written by `np.savez` (stored) and `np.savez_compressed` (deflated), see
/// Scripts/fixtures/safetensors_npz.py; each member is compared with the same array saved by
/// NumPy as `npz/expected/<member>.npy`.
final class NPZTests: XCTestCase {
    static let members = ["f32", "f16", "i64", "flags", "fortran", "scalar", "empty", "group/u8"]

    func elementBytes(_ t: Tensor) -> [UInt8] {
        // Empty tensors answered directly (see SafetensorsTests.elementBytes).
        t.elementCount == 0 ? [] : t.withContiguousBytes { Array($0) }
    }

    func expected(_ member: String) throws -> Tensor {
        try NPY.read(path: fixturePath("npz/expected/\(member.replacingOccurrences(of: "/", with: "%2F")).npy"))
    }

    func testReadsStoredAndDeflatedArchives() throws {
        for archive in ["plain", "compressed"] {
            let store = try NPZ.read(path: fixturePath("npz/\(archive).npz"))
            XCTAssertEqual(store.names, Self.members, archive)
            XCTAssertTrue(store.metadata.isEmpty)
            for name in Self.members {
                let t = try XCTUnwrap(store[name], "\(archive)/\(name)")
                let e = try expected(name)
                XCTAssertEqual(t.dtype, e.dtype, "\(archive)/\(name)")
                XCTAssertEqual(t.shape, e.shape, "\(archive)/\(name)")
                XCTAssertEqual(elementBytes(t), elementBytes(e), "\(archive)/\(name)")
            }
            XCTAssertEqual(store["f32"]?.dtype, .f32)
            XCTAssertEqual(store["f16"]?.dtype, .f16)
            XCTAssertEqual(store["i64"]?.dtype, .i64)
            XCTAssertEqual(store["flags"]?.dtype, .bool)
            XCTAssertEqual(store["scalar"]?.shape.rank, 0)
            XCTAssertEqual(store["empty"]?.shape.dims, [0, 3])
        }
    }

    func testFortranOrderMemberIsReadInLogicalOrder() throws {
        let store = try NPZ.read(path: fixturePath("npz/plain.npz"))
        let t = try XCTUnwrap(store["fortran"])
        XCTAssertEqual(t.shape.dims, [3, 4])
        XCTAssertFalse(t.isContiguous, "a Fortran-order member is a column-major view")
        // Seed 14 is the fixture's generator: element [i][j] is value 4i + j in C order.
        XCTAssertEqual(t.floats(), SyntheticInput.values(seed: 14, count: 12))
    }

    func testWriteReadIsBitIdentical() throws {
        let dir = makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for archive in ["plain", "compressed"] {
            let first = try NPZ.read(path: fixturePath("npz/\(archive).npz"))
            let out = "\(dir)/\(archive).npz"
            try NPZ.write(first, to: out)
            let second = try NPZ.read(path: out)
            XCTAssertEqual(second.names, first.names)
            for (name, t) in first.tensors {
                let u = try XCTUnwrap(second[name])
                XCTAssertEqual(u.dtype, t.dtype, name)
                XCTAssertEqual(u.shape, t.shape, name)
                XCTAssertEqual(elementBytes(u), elementBytes(t), name)
                XCTAssertTrue(u.isContiguous, "written in C order: \(name)")
            }
        }
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: dir)), ["plain.npz", "compressed.npz"])
    }

    func testWriteIsDeterministicAndStored() throws {
        let dir = makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try NPZ.read(path: fixturePath("npz/compressed.npz"))
        try NPZ.write(store, to: dir + "/a.npz")
        try NPZ.write(store, to: dir + "/b.npz")
        let a = try XCTUnwrap(FileManager.default.contents(atPath: dir + "/a.npz"))
        XCTAssertEqual(a, FileManager.default.contents(atPath: dir + "/b.npz"))
        // Stored: each member's .npy bytes appear verbatim, as np.savez writes them.
        let npy = try NPY.encode(try expected("f32"))
        XCTAssertNotNil(a.range(of: Data(npy)))
    }

    func testUnsupportedDTypeLeavesNoFile() throws {
        let dir = makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = try SyntheticInput.tensor(seed: 3, shape: [2, 2])
        let store = try TensorStore([("ok", t), ("half", t.converted(to: .bf16))])
        XCTAssertThrowsError(try NPZ.write(store, to: dir + "/x.npz")) { XCTAssertTrue($0 is NPYError, "\($0)") }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }

    func testManyMembersUseZip64EndRecords() throws {
        // 70,000 members overflow the classic end record's 16-bit count: ZIP64 end records.
        var store = TensorStore()
        for i in 0..<70_000 { try store.insert(Tensor(shape: [1], floats: [Float(i)]), named: "t\(i)") }
        let dir = makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try NPZ.write(store, to: dir + "/many.npz")
        let back = try NPZ.read(path: dir + "/many.npz")
        XCTAssertEqual(back.count, 70_000)
        XCTAssertEqual(back["t69999"]?.floats(), [69_999])
        XCTAssertEqual(back.names.prefix(3), ["t0", "t1", "t2"])
    }

    // MARK: damaged archives (made from the fixtures in memory)

    func damaged(_ archive: String, _ edit: (inout [UInt8]) throws -> Void) throws -> String {
        var bytes = [UInt8](try XCTUnwrap(FileManager.default.contents(atPath: fixturePath("npz/\(archive).npz"))))
        try edit(&bytes)
        let dir = makeTemporaryDirectory()
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/damaged.npz"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func npzError(_ path: String) -> NPZError? {
        do {
            _ = try NPZ.read(path: path)
            return nil
        } catch {
            XCTAssertTrue(error is NPZError, "\(error)")
            return error as? NPZError
        }
    }

    /// Offset of the central directory header of the member named `name`.
    func centralHeader(_ bytes: [UInt8], _ name: String) throws -> Int {
        let sig: [UInt8] = [0x50, 0x4B, 0x01, 0x02]
        for i in 0..<(bytes.count - 46) where Array(bytes[i..<(i + 4)]) == sig {
            let n = Int(bytes[i + 28]) | Int(bytes[i + 29]) << 8
            if Array(bytes[(i + 46)..<(i + 46 + n)]) == Array(name.utf8) { return i }
        }
        throw XCTSkip("no central header for \(name)")
    }

    func put32(_ v: UInt32, at i: Int, in bytes: inout [UInt8]) {
        for k in 0..<4 { bytes[i + k] = UInt8(truncatingIfNeeded: v >> (8 * k)) }
    }

    func testTruncatedArchive() throws {
        let path = try damaged("plain") { $0.removeLast($0.count / 2) }
        guard case .zip(.notAZip)? = npzError(path) else { return XCTFail("expected zip(notAZip)") }
    }

    func testNotAnArchive() throws {
        guard case .zip(.notAZip)? = npzError(fixturePath("npz/expected/f32.npy")) else { return XCTFail("expected zip(notAZip)") }
    }

    func testCorruptDataFailsTheCRC() throws {
        let path = try damaged("plain") { bytes in
            let start = try XCTUnwrap((0..<bytes.count).first { bytes[$0] == 0x93 && bytes[$0 + 1] == 0x4E })
            bytes[start + 151] ^= 0xFF // last byte of f32.npy
        }
        guard case let .zip(.readFailed(_, member, message))? = npzError(path) else { return XCTFail("expected zip(readFailed)") }
        XCTAssertEqual(member, "f32.npy")
        XCTAssertTrue(message.uppercased().contains("CRC"), message)
    }

    func testDeclaredSizeBeyondTheFileIsRefusedBeforeAllocating() throws {
        let path = try damaged("plain") { bytes in
            put32(0x7FFF_FFF0, at: try centralHeader(bytes, "f16.npy") + 24, in: &bytes)
        }
        // A stored member's two sizes must agree; the size is never believed alone.
        guard case let .zip(.corrupt(_, detail))? = npzError(path) else { return XCTFail("expected zip(corrupt)") }
        XCTAssertTrue(detail.contains("'f16.npy'") && detail.contains("\(0x7FFF_FFF0)"), detail)
    }

    func testDeflateBombRatioIsRefused() throws {
        let path = try damaged("compressed") { bytes in
            put32(2_000_000, at: try centralHeader(bytes, "f16.npy") + 24, in: &bytes) // 77 compressed bytes
        }
        guard case let .zip(.corrupt(_, detail))? = npzError(path) else { return XCTFail("expected zip(corrupt)") }
        XCTAssertTrue(detail.contains("'f16.npy' claims 2000000 bytes"), detail)
    }

    func testMemberThatIsNotNPY() throws {
        let path = try damaged("plain") { bytes in
            let from = Array("f16.npy".utf8), to = Array("f16.txt".utf8)
            for i in 0..<(bytes.count - from.count) where Array(bytes[i..<(i + from.count)]) == from {
                bytes.replaceSubrange(i..<(i + from.count), with: to)
            }
        }
        XCTAssertEqual(npzError(path).map { "\($0)" }?.contains("'f16.txt' is not an .npy array"), true)
    }

    func testDuplicateMemberName() throws {
        let path = try damaged("plain") { bytes in
            let from = Array("f16.npy".utf8), to = Array("f32.npy".utf8)
            for i in 0..<(bytes.count - from.count) where Array(bytes[i..<(i + from.count)]) == from {
                bytes.replaceSubrange(i..<(i + from.count), with: to)
            }
        }
        switch npzError(path) {
        case let .duplicateName(_, name)?: XCTAssertEqual(name, "f32")
        case let .zip(.duplicateEntry(_, name))?: XCTAssertEqual(name, "f32.npy")
        default: XCTFail("expected a duplicate-name error")
        }
    }

    // MARK: hostile archives: memory charged to the read, names escaped

    /// Inflating is charged to the read's budget: a deflated member that fits deflate's ratio
    /// still cannot make the read allocate more than `ReadLimits.memoryBytes`.
    func testInflationIsChargedToTheReadsMemoryLimit() throws {
        let path = fixturePath("npz/compressed.npz")
        XCTAssertNoThrow(try NPZ.read(path: path, limits: ReadLimits(memoryBytes: 1 << 20)))
        do {
            _ = try NPZ.read(path: path, limits: ReadLimits(memoryBytes: 64))
            XCTFail("read within 64 bytes")
        } catch let error as NPZError {
            guard case .store(_, .memoryLimitExceeded(_, _, 64)) = error else { return XCTFail("\(error)") }
            assertOneLine(error.description)
            XCTAssertTrue(error.description.contains("DINOKIT_READ_MEMORY_LIMIT"), error.description)
        }
    }

    /// A stored member is mapped, but byte-swapping a big-endian array allocates its size: charged.
    func testByteSwappingIsChargedToTheReadsMemoryLimit() throws {
        let dir = makeTemporaryDirectory()
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        let dict = "{'descr': '>f4', 'fortran_order': False, 'shape': (256,), }"
        let header = dict + String(repeating: " ", count: (64 - (10 + dict.utf8.count + 1) % 64) % 64) + "\n"
        let npy: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count), 0] + Array(header.utf8) + [UInt8](repeating: 1, count: 1024)
        try Data(npy).write(to: URL(fileURLWithPath: dir + "/big.npy"))
        XCTAssertEqual(try NPY.read(path: dir + "/big.npy").elementCount, 256)
        XCTAssertThrowsError(try NPY.read(path: dir + "/big.npy", limits: ReadLimits(memoryBytes: 1000))) { error in
            guard case .memoryLimitExceeded(_, 1024, 1000)? = error as? TensorStoreError else { return XCTFail("\(error)") }
        }
    }

    /// A zip whose member names hold a newline and a terminal escape: `Checkpoint.read` routes a
    /// zip without data.pkl to NPZ, whose messages used to print the names raw.
    func testMemberNamesAreEscapedInMessages() throws {
        for fixture in ["hostile/pth-escape-entry.pth"] {
            do {
                _ = try Checkpoint.read(path: fixturePath(fixture))
                XCTFail("read \(fixture)")
            } catch {
                guard case .notNPY(_, let member)? = error as? NPZError else { return XCTFail("\(error)") }
                XCTAssertTrue(member.contains("\u{1b}"))
                assertOneLine("\(error)")
                XCTAssertTrue("\(error)".contains("\\n\\u{1b}[2J"), "\(error)")
            }
        }
    }

    func assertOneLine(_ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(message.unicodeScalars.contains { $0.properties.generalCategory == .control }, message, file: file, line: line)
    }
}
