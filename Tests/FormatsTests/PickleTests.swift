import Formats
import Foundation
import TensorStore
import TestSupport
import XCTest

/// The unpickler against pickles CPython wrote (protocols 2-5, every value kind a checkpoint holds)
/// and the data.pkl of torch.save files; the pickler against the unpickler and torch's layout.
final class PickleTests: XCTestCase {
    /// Compares a value with expected.json's tagged form; returns where they differ.
    func mismatch(_ v: PickleValue, _ expected: Any, at path: String = "root") -> String? {
        guard let e = expected as? [String: Any], let (tag, body) = e.first, e.count == 1 else { return "\(path): bad expectation" }
        func items(_ values: [PickleValue]) -> String? {
            guard let list = body as? [Any], list.count == values.count else { return "\(path): \(values.count) items, expected \((body as? [Any])?.count ?? -1)" }
            for (i, (x, y)) in zip(values, list).enumerated() {
                if let m = mismatch(x, y, at: "\(path)[\(i)]") { return m }
            }
            return nil
        }
        func pairs(_ d: PickleDict, kind: PickleDict.Kind) -> String? {
            guard d.kind == kind else { return "\(path): dict kind \(d.kind), expected \(kind)" }
            guard let list = body as? [[Any]], list.count == d.entries.count else { return "\(path): \(d.entries.count) entries" }
            for (entry, pair) in zip(d.entries, list) {
                if let m = mismatch(entry.key, pair[0], at: "\(path).key") ?? mismatch(entry.value, pair[1], at: "\(path)[\(entry.key)]") { return m }
            }
            return nil
        }
        switch (tag, v) {
        case ("none", .none): return nil
        case let ("bool", .bool(b)): return b == (body as? Bool) ? nil : "\(path): \(b)"
        case ("int", .int), ("int", .bigInt): return v.scalarText == body as? String ? nil : "\(path): \(v) != \(body)"
        case let ("float", .float(d)):
            let bits = PthExpected.hex(body as? String ?? "").reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            return d.bitPattern == bits ? nil : "\(path): \(d) bits differ"
        case let ("str", .string(s)): return s == body as? String ? nil : "\(path): '\(s)'"
        case let ("bytes", .bytes(b)): return b == PthExpected.hex(body as? String ?? "") ? nil : "\(path): bytes \(b)"
        case let ("tuple", .tuple(x)), let ("list", .list(x)), let ("set", .set(x)): return items(x)
        case let ("dict", .dict(d)): return pairs(d, kind: .dict)
        case let ("odict", .dict(d)): return pairs(d, kind: .orderedDict)
        case let ("counter", .dict(d)): return pairs(d, kind: .counter)
        case let ("object", .object(o)):
            guard let spec = body as? [Any], spec.count == 3, o.module == spec[0] as? String, o.name == spec[1] as? String,
                  let args = spec[2] as? [Any], args.count == o.args.count else { return "\(path): object \(o)" }
            for (a, b) in zip(o.args, args) { if let m = mismatch(a, b, at: "\(path).arg") { return m } }
            return nil
        default:
            return "\(path): got \(String(describing: v).prefix(80)), expected \(tag)"
        }
    }

    func testCPythonPicklesOfEveryProtocol() throws {
        let spec = try XCTUnwrap(PthExpected.json["pickles"] as? [String: Any])
        let files = try XCTUnwrap(spec["files"] as? [String])
        XCTAssertEqual(files.count, 4)
        for name in files {
            let bytes = try XCTUnwrap(FileManager.default.contents(atPath: fixturePath("pth/\(name)")))
            let value = try Unpickler.unpickle(Array(bytes))
            XCTAssertNil(mismatch(value, spec["value"] as Any), name)
        }
    }

    func testMemoSharesInsteadOfCopying() throws {
        let bytes = try XCTUnwrap(FileManager.default.contents(atPath: fixturePath("pth/values-p2.pkl")))
        let value = try Unpickler.unpickle(Array(bytes))
        let shared = try XCTUnwrap(value.dictValue?["shared"]?.sequenceItems)
        XCTAssertEqual(shared.count, 2)
        XCTAssertEqual(shared[0], shared[1])
        XCTAssertEqual(shared[0], .list([.int(1), .int(2)]))
    }

    func testFloatScalarsPrintAsPythonDoes() throws {
        let reprs = try XCTUnwrap(PthExpected.json["float_reprs"] as? [[String]])
        XCTAssertGreaterThan(reprs.count, 10)
        for pair in reprs {
            let bits = PthExpected.hex(pair[0]).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            XCTAssertEqual(PickleValue.float(Double(bitPattern: bits)).scalarText, pair[1])
        }
    }

    func testTorchDataPklDescribesViews() throws {
        let archive = try ZipArchive(path: fixturePath("pth/noncontig.pth"))
        let entry = try XCTUnwrap(archive.entry(named: "noncontig/data.pkl"))
        let value = try Unpickler.unpickle(try archive.contents(of: entry))
        let dict = try XCTUnwrap(value.dictValue)
        let expected = try PthExpected.file("noncontig.pth")
        XCTAssertEqual(dict.keys.map(\.stringValue), expected.tensors.map(\.name))
        for row in expected.tensors {
            let t = try XCTUnwrap(dict[row.name]?.tensorValue, row.name)
            XCTAssertEqual(t.shape, row.shape, row.name)
            XCTAssertEqual(t.strides, row.strides, row.name)
            XCTAssertEqual(t.storageOffset, row.offset, row.name)
            XCTAssertEqual(t.dtype, row.dtype, row.name)
        }
        XCTAssertEqual(dict["transposed"]?.tensorValue?.storage.key, dict["base"]?.tensorValue?.storage.key)
    }

    func testProtocol4OpcodesAndV3Tensors() throws {
        let archive = try ZipArchive(path: fixturePath("pth/dtype-v3.pth"))
        let value = try Unpickler.unpickle(try archive.contents(of: try XCTUnwrap(archive.entry(named: "dtype-v3/data.pkl"))))
        let u16 = try XCTUnwrap(value.dictValue?["u16"]?.tensorValue)
        XCTAssertEqual(u16.storage.storageClass, "UntypedStorage")
        XCTAssertEqual(u16.storage.numel, 10, "UntypedStorage counts bytes")
        XCTAssertEqual(u16.torchDType, "uint16")
        XCTAssertEqual(u16.dtype, .u16)
    }

    func testPicklerRoundTrip() throws {
        let storage = PickleStorageRef(key: "0", storageClass: "HalfStorage", torchDType: "float16", location: "cpu", numel: 6, view: nil)
        let tensor = PickleTensor(storage: storage, torchDType: "float16", storageOffset: 2, shape: [2, 2], strides: [1, 2],
                                  requiresGrad: false, isParameter: false)
        var parameter = tensor
        parameter.isParameter = true
        parameter.requiresGrad = true
        let value = PickleValue.dict(PickleDict(kind: .orderedDict, entries: [
            PickleDictEntry(key: .string("w"), value: .tensor(tensor)),
            PickleDictEntry(key: .string("p"), value: .tensor(parameter)),
            PickleDictEntry(key: .int(3), value: .list([.int(-1), .int(300), .int(70000), .int(Int.max), .int(Int.min), .float(-0.0)])),
            PickleDictEntry(key: .string("t"), value: .tuple([.none, .bool(true), .string("ünï"), .bytes([0, 255, 128])])),
            PickleDictEntry(key: .string("big"), value: .bigInt(bytes: [0, 0, 0, 0, 0, 0, 0, 0, 1])),
            PickleDictEntry(key: .string("set"), value: .set([.int(7)])),
            PickleDictEntry(key: .string("many"), value: .list((0..<2500).map { .int($0) })),
            PickleDictEntry(key: .string("dtype"), value: .global(module: "torch", name: "bfloat16")),
        ], attributes: [PickleDictEntry(key: .string("_metadata"), value: .dict(PickleDict(entries: [
            PickleDictEntry(key: .string(""), value: .dict(PickleDict(entries: [PickleDictEntry(key: .string("version"), value: .int(1))]))),
        ])))]))
        XCTAssertEqual(try Unpickler.unpickle(try Pickler.pickle(value)), value)

        // CPython's pickle of every value kind survives a DinoKit re-pickle.
        let bytes = try XCTUnwrap(FileManager.default.contents(atPath: fixturePath("pth/values-p4.pkl")))
        let original = try Unpickler.unpickle(Array(bytes))
        let again = try Unpickler.unpickle(try Pickler.pickle(original))
        let spec = try XCTUnwrap(PthExpected.json["pickles"] as? [String: Any])
        XCTAssertNil(mismatch(again, spec["value"] as Any))
    }

    func testPicklerWritesTorchsStateDictOpcodes() throws {
        // The opcode sequence torch.save writes for one tensor entry (see dtype-f32.pth's data.pkl).
        let storage = PickleStorageRef(key: "0", storageClass: "FloatStorage", torchDType: "float32", location: "cpu", numel: 6, view: nil)
        let t = PickleTensor(storage: storage, torchDType: "float32", storageOffset: 0, shape: [2, 3], strides: [3, 1],
                             requiresGrad: false, isParameter: false)
        let bytes = try Pickler.pickle(.dict(PickleDict(kind: .orderedDict, entries: [PickleDictEntry(key: .string("a"), value: .tensor(t))])))
        let text = String(decoding: bytes, as: UTF8.self)
        XCTAssertEqual(Array(bytes.prefix(2)), [0x80, 0x02])
        XCTAssertTrue(text.contains("ccollections\nOrderedDict\n"))
        XCTAssertTrue(text.contains("ctorch._utils\n_rebuild_tensor_v2\n"))
        XCTAssertTrue(text.contains("ctorch\nFloatStorage\n"))
        XCTAssertEqual(bytes.last, 0x2E)
    }
}
