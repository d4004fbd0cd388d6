import Formats
import Foundation
import TensorStore
import TestSupport
import XCTest

/// Checkpoints written by torch.save (Scripts/fixtures/pth.py), read and compared bit for bit with
/// what torch and NumPy recorded in Fixtures/pth/expected.json; and DinoKit's writer read back.
final class TorchCheckpointTests: XCTestCase {
    func read(_ name: String) throws -> TorchCheckpointContents {
        try TorchCheckpoint.read(path: fixturePath("pth/\(name)"))
    }

    func testEveryStorageDTypeReadsBitExactly() throws {
        for label in ["f32", "f64", "f16", "bf16", "i64", "i32", "i16", "i8", "u8", "bool", "v3"] {
            let name = "dtype-\(label).pth"
            let contents = try read(name)
            XCTAssertEqual(contents.kind, .zip)
            PthExpected.assertStore(contents.store, matches: try PthExpected.file(name), name)
            for t in contents.store.tensors.values { XCTAssertTrue(t.storage.isMapped, "\(name): storages are mapped, not copied") }
            XCTAssertTrue(contents.store.metadata.isEmpty, name)
        }
    }

    func testStateDictRootKeepsItsMetadataBuild() throws {
        let root = try read("dtype-f32.pth").root
        let dict = try XCTUnwrap(root.dictValue)
        XCTAssertEqual(dict.kind, .orderedDict)
        XCTAssertEqual(dict.keys, [.string("weight"), .string("bias"), .string("scalar")])
        let metadata = try XCTUnwrap(dict.attribute("_metadata")?.dictValue)
        XCTAssertEqual(metadata[""]?.dictValue?["version"], .int(1))
        let weight = try XCTUnwrap(dict["weight"]?.tensorValue)
        XCTAssertEqual(weight.storage.storageClass, "FloatStorage")
        XCTAssertEqual(weight.storage.key, "0")
        XCTAssertEqual(weight.storage.location, "cpu")
        XCTAssertEqual(weight.storage.numel, 12)
    }

    func testSharedStoragesAreOneMappedStorage() throws {
        let contents = try read("shared.pth")
        let expected = try PthExpected.file("shared.pth")
        PthExpected.assertStore(contents.store, matches: expected, "shared.pth")
        PthExpected.assertSharing(contents.store, matches: expected, "shared.pth")
        let a = try XCTUnwrap(contents.store["a"])
        XCTAssertTrue(a.storage.isMapped)
        XCTAssertEqual(a.storage.count, 64, "one 4x4 float storage, not one per view")
    }

    func testNonContiguousViewsKeepStridesAndMaterialiseCorrectly() throws {
        let contents = try read("noncontig.pth")
        let expected = try PthExpected.file("noncontig.pth")
        PthExpected.assertStore(contents.store, matches: expected, "noncontig.pth")
        PthExpected.assertSharing(contents.store, matches: expected, "noncontig.pth")
        XCTAssertEqual(contents.store["expanded"]?.strides, [0, 1])
        XCTAssertEqual(contents.store["fortran"]?.isContiguous, false)
    }

    func testProtocol4PickleWithScalarsOfEveryKind() throws {
        let contents = try read("proto4.pth")
        let expected = try PthExpected.file("proto4.pth")
        PthExpected.assertStore(contents.store, matches: expected, "proto4.pth")
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: contents.store.metadata.map { ($0.key, $0.value) }), expected.metadata)
        let meta = try XCTUnwrap(contents.root.dictValue?["meta"]?.dictValue)
        XCTAssertEqual(meta["blob"], .bytes(Array("\u{0}\u{1}bytes".utf8)))
        XCTAssertEqual(meta["nothing"], PickleValue.none)
        XCTAssertEqual(meta[3], .string("int key"))
    }

    func testBigEndianFileIsSwappedPerElementSize() throws {
        let contents = try read("bigendian.pth")
        let expected = try PthExpected.file("bigendian.pth")
        PthExpected.assertStore(contents.store, matches: expected, "bigendian.pth")
        PthExpected.assertSharing(contents.store, matches: expected, "bigendian.pth")
        XCTAssertFalse(try XCTUnwrap(contents.store["f32"]).storage.isMapped, "swapped into owned memory")
        XCTAssertTrue(try XCTUnwrap(contents.store["u8"]).storage.isMapped, "single bytes need no swap")
    }

    func testLegacyFormat() throws {
        let contents = try read("legacy.pth")
        XCTAssertEqual(contents.kind, .legacy)
        let expected = try PthExpected.file("legacy.pth")
        PthExpected.assertStore(contents.store, matches: expected, "legacy.pth")
        PthExpected.assertSharing(contents.store, matches: expected, "legacy.pth")
        XCTAssertEqual(contents.store.metadata["epoch"], "3")
        XCTAssertTrue(try XCTUnwrap(contents.store["state_dict.w"]).storage.isMapped)
    }

    func testTrainingCheckpointNamesEveryTensorAndScalarByPath() throws {
        for name in ["checkpoint.pth", "teacher.pth"] {
            let contents = try read(name)
            let expected = try PthExpected.file(name)
            PthExpected.assertStore(contents.store, matches: expected, name)
            XCTAssertEqual(Dictionary(uniqueKeysWithValues: contents.store.metadata.map { ($0.key, $0.value) }), expected.metadata, name)
        }
        let store = try read("checkpoint.pth").store
        XCTAssertNotNil(store["optimizer.state.0.exp_avg"])
        XCTAssertEqual(store.metadata["iteration"], "7")
        XCTAssertEqual(store.metadata["optimizer.param_groups.0.lr"], "0.001")
        XCTAssertEqual(try read("teacher.pth").store.names.first, "teacher.0.weight")
    }

    func testParametersSubclassStateAndTorchGlobals() throws {
        let contents = try read("objects.pth")
        let expected = try PthExpected.file("objects.pth")
        PthExpected.assertStore(contents.store, matches: expected, "objects.pth")
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: contents.store.metadata.map { ($0.key, $0.value) }), expected.metadata)
        let root = try XCTUnwrap(contents.root.dictValue)
        let param = try XCTUnwrap(root["param"]?.tensorValue)
        XCTAssertTrue(param.isParameter && param.requiresGrad)
        let stateful = try XCTUnwrap(root["stateful"]?.tensorValue)
        XCTAssertTrue(stateful.isParameter && !stateful.requiresGrad)
        XCTAssertEqual(root["tagged"]?.tensorValue?.torchDType, "float64")
        XCTAssertEqual(root["size"], .tuple([.int(2), .int(3)]))
        XCTAssertEqual(root["device"], .object(PickleObject(module: "torch", name: "device", args: [.string("cpu")])))
        XCTAssertEqual(root["dtype"], .global(module: "torch", name: "float16"))
    }

    func testRootFolderZip64AndDeflatedArchives() throws {
        for name in ["rootname.pth", "zip64.pth", "deflated.pth"] {
            let contents = try read(name)
            PthExpected.assertStore(contents.store, matches: try PthExpected.file(name), name)
        }
        XCTAssertTrue(try read("zip64.pth").store["a"]?.storage.isMapped == true)
        XCTAssertTrue(try read("deflated.pth").store["b"]?.storage.isMapped == false, "deflated storages are inflated")
    }

    func testSniffers() throws {
        func head(_ name: String) throws -> [UInt8] {
            Array(try XCTUnwrap(FileManager.default.contents(atPath: fixturePath("pth/\(name)"))).prefix(64))
        }
        try head("dtype-f32.pth").withUnsafeBytes {
            XCTAssertTrue(TorchCheckpoint.isZip($0))
            XCTAssertFalse(TorchCheckpoint.isLegacy($0))
        }
        try head("legacy.pth").withUnsafeBytes {
            XCTAssertTrue(TorchCheckpoint.isLegacy($0))
            XCTAssertFalse(TorchCheckpoint.isZip($0))
        }
        try head("values-p2.pkl").withUnsafeBytes {
            XCTAssertFalse(TorchCheckpoint.isLegacy($0))
            XCTAssertFalse(TorchCheckpoint.isZip($0))
        }
        [UInt8]().withUnsafeBytes { XCTAssertFalse(TorchCheckpoint.isZip($0) || TorchCheckpoint.isLegacy($0)) }
        XCTAssertThrowsError(try read("values-p2.pkl")) { error in
            guard case .notACheckpoint = error as? TorchCheckpointError else { return XCTFail("\(error)") }
        }
    }

    // MARK: - Writer

    func testRoundTripIsBitIdentical() throws {
        let dir = makeTemporaryDirectory("pth-roundtrip")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for name in PthExpected.checkpointNames {
            let original = try read(name).store
            let out = "\(dir)/\(name)"
            try TorchCheckpoint.write(original, to: out)
            let again = try TorchCheckpoint.read(path: out)
            XCTAssertEqual(again.kind, .zip)
            XCTAssertEqual(again.store.names, original.names, name)
            for (tensorName, t) in original.tensors {
                let u = try XCTUnwrap(again.store[tensorName])
                XCTAssertTrue(u.bitwiseEqual(t), "\(name) \(tensorName)")
                XCTAssertTrue(u.isContiguous && u.offset == 0, "written contiguously")
                XCTAssertTrue(u.storage.isMapped)
            }
            // Written again from the re-read store: the same bytes (deterministic writer).
            try FileManager.default.createDirectory(atPath: "\(dir)/again", withIntermediateDirectories: true)
            let out2 = "\(dir)/again/\(name)"
            try TorchCheckpoint.write(again.store, to: out2)
            XCTAssertEqual(FileManager.default.contents(atPath: out2), FileManager.default.contents(atPath: out), name)
        }
    }

    func testWrittenFileHasTorchsLayout() throws {
        let dir = makeTemporaryDirectory("pth-layout")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try read("noncontig.pth").store
        let path = "\(dir)/my-model.pth"
        try TorchCheckpoint.write(store, to: path)
        let archive = try ZipArchive(path: path)
        let names = archive.entries.map(\.name)
        XCTAssertEqual(Array(names.prefix(4)), ["my-model/data.pkl", "my-model/.format_version", "my-model/.storage_alignment", "my-model/byteorder"])
        XCTAssertEqual(Array(names.suffix(2)), ["my-model/version", "my-model/.data/serialization_id"])
        XCTAssertEqual(names.filter { $0.hasPrefix("my-model/data/") }.count, store.count, "one storage per tensor")
        for e in archive.entries {
            XCTAssertEqual(e.dataOffset % 64, 0, "\(e.name) is 64-byte aligned")
            XCTAssertTrue(e.isStored)
            let storage = try archive.storage(for: e)
            withExtendedLifetime(storage) { XCTAssertEqual(ZipCRC32.checksum(storage.bytes), e.crc32, e.name) }
        }
        let root = try TorchCheckpoint.read(path: path).root
        let dict = try XCTUnwrap(root.dictValue)
        XCTAssertEqual(dict.kind, .orderedDict)
        XCTAssertNotNil(dict.attribute("_metadata")?.dictValue?[""])
    }

    func testWriterCoversEveryDType() throws {
        let dir = makeTemporaryDirectory("pth-dtypes")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var store = TensorStore()
        var rng = SyntheticInput(seed: 42)
        for (i, dtype) in DType.allCases.enumerated() {
            let shape: Shape = i % 3 == 0 ? [] : [2, i + 1]
            let bytes = (0..<(shape.elementCount * dtype.size)).map { _ in UInt8(truncatingIfNeeded: rng.nextState() >> 24) }
            let fixed = dtype == .bool ? bytes.map { $0 & 1 } : bytes
            try fixed.withUnsafeBytes { try store.insert(Tensor(dtype: dtype, shape: shape, bytes: $0), named: "t.\(dtype.rawValue)") }
        }
        let path = "\(dir)/all.pth"
        try TorchCheckpoint.write(store, to: path)
        let back = try TorchCheckpoint.read(path: path)
        for (name, t) in store.tensors {
            XCTAssertTrue(try XCTUnwrap(back.store[name]).bitwiseEqual(t), name)
        }
        let u16 = try XCTUnwrap(back.root.dictValue?["t.U16"]?.tensorValue)
        XCTAssertEqual(u16.storage.storageClass, "UntypedStorage")
        XCTAssertEqual(u16.torchDType, "uint16")
    }

    func testWriteIsAtomic() throws {
        let dir = makeTemporaryDirectory("pth-atomic")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try read("dtype-f32.pth").store
        XCTAssertThrowsError(try TorchCheckpoint.write(store, to: "\(dir)/missing/x.pth"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/missing"))
        let path = "\(dir)/x.pth"
        _ = FileManager.default.createFile(atPath: path, contents: Data("old".utf8))
        try TorchCheckpoint.write(store, to: path)
        XCTAssertEqual(try TorchCheckpoint.read(path: path).store.names, store.names)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["x.pth"], "no temporary left behind")
    }
}
