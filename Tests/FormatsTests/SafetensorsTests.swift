import Foundation
import Formats
import TensorStore
import TestSupport
import XCTest

/// safetensors files written by the reference writers (safetensors.torch / safetensors.numpy) and
/// a few hand-made corner cases the reference reader accepts (Scripts/fixtures/safetensors_npz.py).
/// Every tensor is compared bit for bit with `expected/<file>/<tensor>.npy`, saved by the script
/// from torch's (or the reference reader's) own tensors.
final class SafetensorsTests: XCTestCase {
    static let writerFiles = ["mixed", "metadata", "scalar_empty", "empty", "numpy_writer"]
        + DType.allCases.map { "dtype_\($0.rawValue)" }
    static let handMadeFiles = ["unaligned", "unordered"]

    func testEveryDTypeMatchesTorch() throws {
        for dtype in DType.allCases {
            let stem = "dtype_\(dtype.rawValue)"
            let store = try Safetensors.read(path: fixturePath("safetensors/\(stem).safetensors"))
            XCTAssertEqual(store.names, ["x"], stem)
            XCTAssertEqual(store["x"]?.dtype, dtype, stem)
            try assertMatchesExpected(store, stem: stem)
        }
    }

    func testEveryFileMatchesReferenceValues() throws {
        for stem in Self.writerFiles + Self.handMadeFiles {
            let store = try Safetensors.read(path: fixturePath("safetensors/\(stem).safetensors"))
            try assertMatchesExpected(store, stem: stem)
        }
    }

    func testTensorOrderIsDataOrder() throws {
        let file = try MappedFile(path: fixturePath("safetensors/mixed.safetensors"))
        let store = try Safetensors.read(file: file)
        // The reference writer's order: dtype descending (I64 > F64 > F32 > BF16 > F16 > BOOL), then name.
        XCTAssertEqual(store.names, ["a", "z", "b", "blocks.10.w", "blocks.2.w", "a.b", "Z_flags"])
        let header = try Safetensors.readHeader(file: file)
        XCTAssertEqual(header.entries.map(\.name), store.names)
        XCTAssertEqual(header.entries.first?.dataOffsets.lowerBound, 0)
        for (a, b) in zip(header.entries, header.entries.dropFirst()) {
            XCTAssertEqual(a.dataOffsets.upperBound, b.dataOffsets.lowerBound)
        }
        XCTAssertEqual(header.dataStart + (header.entries.last?.dataOffsets.upperBound ?? 0), file.count)
        XCTAssertEqual(header.dataStart % 8, 0)

        // Header order is free: the hand-made file lists tensors backwards.
        let unordered = try Safetensors.read(path: fixturePath("safetensors/unordered.safetensors"))
        XCTAssertEqual(unordered.names, ["a", "\u{e9}t\u{e9}/b"])
        XCTAssertTrue(unordered.metadata.isEmpty, "null __metadata__ reads as none")
    }

    func testMetadataIsStringToString() throws {
        let store = try Safetensors.read(path: fixturePath("safetensors/metadata.safetensors"))
        let json = try Data(contentsOf: URL(fileURLWithPath: fixturePath("safetensors/expected/metadata/__metadata__.json")))
        let expected = try XCTUnwrap(JSONSerialization.jsonObject(with: json) as? [String: String])
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: store.metadata.map { ($0.key, $0.value) }), expected)
        XCTAssertEqual(store.metadata["note"], "ünïcödé \"quoted\" back\\slash\nnew line\ttab \u{1}")

        let numpyWritten = try Safetensors.read(path: fixturePath("safetensors/numpy_writer.safetensors"))
        XCTAssertEqual(numpyWritten.metadata, ["writer": "safetensors.numpy"])
    }

    func testScalarAndEmptyTensors() throws {
        let store = try Safetensors.read(path: fixturePath("safetensors/scalar_empty.safetensors"))
        XCTAssertEqual(store["scalar"]?.shape.rank, 0)
        XCTAssertEqual(store["scalar"]?.floats(), [2.5])
        XCTAssertEqual(store["flag"]?.shape.rank, 0)
        XCTAssertEqual(store["flag"]?.dtype, .bool)
        XCTAssertEqual(store["empty"]?.shape.dims, [0])
        XCTAssertEqual(store["empty3"]?.shape.dims, [2, 0, 3])
        XCTAssertEqual(store["empty3"]?.byteCount, 0)
        let none = try Safetensors.read(path: fixturePath("safetensors/empty.safetensors"))
        XCTAssertTrue(none.isEmpty)
        XCTAssertTrue(none.metadata.isEmpty)
    }

    func testAlignedTensorsAreMappedNotCopied() throws {
        for stem in ["mixed", "dtype_F64", "scalar_empty"] {
            let store = try Safetensors.read(path: fixturePath("safetensors/\(stem).safetensors"))
            for (name, t) in store.tensors {
                XCTAssertTrue(t.storage.isMapped, "\(stem)/\(name)")
            }
        }
    }

    func testMisalignedTensorsAreCopiedToAlignedMemory() throws {
        let file = try MappedFile(path: fixturePath("safetensors/unaligned.safetensors"))
        let header = try Safetensors.readHeader(file: file)
        XCTAssertEqual(header.dataStart % 8, 1, "the fixture's data buffer starts at an odd offset")
        let store = try Safetensors.read(file: file)
        for (name, t) in store.tensors {
            let address = Int(bitPattern: t.storage.bytes.baseAddress)
            XCTAssertEqual(address % t.dtype.size, 0, name)
            XCTAssertFalse(t.storage.isMapped, name)
        }
        XCTAssertEqual(store["d"]?.floats(), [1.0, -2.0, 0.125])
    }

    func testReEncodingReproducesTheReferenceWritersBytes() throws {
        // Read -> write gives the exact bytes safetensors itself wrote: same order, same JSON,
        // same padding.
        for stem in Self.writerFiles {
            let path = fixturePath("safetensors/\(stem).safetensors")
            let original = try MappedFile(path: path)
            let encoded = try Safetensors.encode(Safetensors.read(file: original))
            XCTAssertEqual(encoded, withExtendedLifetime(original) { Array(original.bytes) }, stem)
        }
    }

    func testReadWriteReadIsBitIdentical() throws {
        let dir = makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for stem in Self.writerFiles + Self.handMadeFiles {
            let first = try Safetensors.read(path: fixturePath("safetensors/\(stem).safetensors"))
            let out = "\(dir)/\(stem).safetensors"
            try Safetensors.write(first, to: out)
            let second = try Safetensors.read(path: out)
            assertBitIdentical(first, second, stem)
            // What DinoKit writes is always padded: every tensor maps aligned.
            let header = try Safetensors.readHeader(file: MappedFile(path: out))
            XCTAssertEqual(header.dataStart % 8, 0, stem)
        }
    }

    func testWriteMaterialisesViewsAndKeepsMetadata() throws {
        let store = try syntheticStore()
        let dir = makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/synthetic.safetensors"
        try Safetensors.write(store, to: out)
        let back = try Safetensors.read(path: out)
        XCTAssertEqual(back.metadata, store.metadata)
        XCTAssertEqual(Set(back.names), Set(store.names))
        for (name, t) in store.tensors {
            let u = try XCTUnwrap(back[name], name)
            XCTAssertTrue(sameElements(u, t), name)
            XCTAssertTrue(u.isContiguous, name)
        }
        // The transposed view was written in its logical (C) order.
        let transposed = try XCTUnwrap(back["transposed"])
        let values = SyntheticInput.values(seed: 21, count: 6) // 2x3 source, read as its 3x2 transpose
        XCTAssertEqual(transposed.floats(), [values[0], values[3], values[1], values[4], values[2], values[5]])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["synthetic.safetensors"])
    }

    func testFailedWriteLeavesNoFileAndKeepsTheOldOne() throws {
        let dir = makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/model.safetensors"
        var bad = try syntheticStore()
        try bad.insert(Tensor(shape: [1], floats: [0]), named: "__metadata__")
        XCTAssertThrowsError(try Safetensors.write(bad, to: out)) { error in
            XCTAssertEqual(error as? SafetensorsError, .reservedTensorName(path: out))
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])

        try FileManager.default.copyItem(atPath: fixturePath("safetensors/mixed.safetensors"), toPath: out)
        XCTAssertThrowsError(try Safetensors.write(bad, to: out))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["model.safetensors"])
        XCTAssertEqual(FileManager.default.contents(atPath: out),
                       FileManager.default.contents(atPath: fixturePath("safetensors/mixed.safetensors")))
        // Writing into a folder that does not exist fails cleanly too.
        XCTAssertThrowsError(try Safetensors.write(bad.removing("__metadata__"), to: dir + "/missing/x.safetensors"))
    }

    func testSniff() throws {
        func sniff(_ path: String) throws -> Bool {
            let file = try MappedFile(path: path)
            return withExtendedLifetime(file) {
                Safetensors.isSafetensors(UnsafeRawBufferPointer(rebasing: file.bytes.prefix(16)), fileSize: file.count)
            }
        }
        for stem in Self.writerFiles + Self.handMadeFiles {
            XCTAssertTrue(try sniff(fixturePath("safetensors/\(stem).safetensors")), stem)
        }
        XCTAssertFalse(try sniff(fixturePath("npz/expected/f32.npy")))
        XCTAssertFalse(try sniff(fixturePath("npz/plain.npz")))
        XCTAssertFalse(try sniff(fixturePath("hostile/safetensors-too-small.safetensors")))
        // An absurd header length is still a safetensors file: reading it names the length.
        XCTAssertTrue(try sniff(fixturePath("hostile/safetensors-huge-header.safetensors")))
        XCTAssertTrue(try sniff(fixturePath("hostile/safetensors-header-beyond-file.safetensors")))
    }

    /// Issue 15: `Checkpoint.read` said "not a checkpoint DinoKit recognises" for these.
    func testAbsurdHeaderLengthIsNamedThroughCheckpointRead() {
        XCTAssertThrowsError(try Checkpoint.read(path: fixturePath("hostile/safetensors-huge-header.safetensors"))) { error in
            XCTAssertTrue("\(error)".contains("safetensors header length 100000001 exceeds the limit"), "\(error)")
        }
        XCTAssertThrowsError(try Checkpoint.read(path: fixturePath("hostile/safetensors-header-beyond-file.safetensors"))) { error in
            XCTAssertTrue("\(error)".contains("runs past the end of the"), "\(error)")
        }
    }

    /// Views materialised (a transpose, a row at an offset), dtypes converted and metadata escaped
    /// exactly as the reference writer does: DinoKit's bytes for the synthetic store equal
    /// `safetensors.torch.save_file`'s for the same tensors (Fixtures/safetensors/views.safetensors,
    /// one metadata entry because the reference writer's order of several is not stable).
    func testViewsAndConversionsWriteTheReferenceWritersBytes() throws {
        var store = try syntheticStore()
        store.metadata = ["quote": store.metadata["quote"] ?? ""]
        let reference = try MappedFile(path: fixturePath("safetensors/views.safetensors"))
        XCTAssertEqual(try Safetensors.encode(store), withExtendedLifetime(reference) { Array(reference.bytes) })
    }

    // MARK: helpers

    /// Element bytes in C order. Empty tensors are answered directly: `Tensor.isContiguous` is
    /// false for shapes like [2, 0, 3], and materialising them recurses (reported to the lead).
    func elementBytes(_ t: Tensor) -> [UInt8] {
        t.elementCount == 0 ? [] : t.withContiguousBytes { Array($0) }
    }

    func sameElements(_ a: Tensor, _ b: Tensor) -> Bool {
        a.dtype == b.dtype && a.shape == b.shape && elementBytes(a) == elementBytes(b)
    }

    /// Seeded values (SyntheticInput, mirrored by Scripts/dinokit_ref/synthetic.py) in several
    /// dtypes and layouts: bf16 and f16 conversions, a transposed (non-contiguous) view, a slice
    /// of a shared storage, a scalar, an empty tensor.
    func syntheticStore() throws -> TensorStore {
        let base = try SyntheticInput.tensor(seed: 20, shape: [4, 3])
        let source = try SyntheticInput.tensor(seed: 21, shape: [2, 3])
        let transposed = try Tensor(storage: source.storage, dtype: .f32, shape: [3, 2], strides: [1, 3])
        let row = try Tensor(storage: base.storage, dtype: .f32, shape: [3], offset: 6)
        return try TensorStore([
            ("weight", base),
            ("weight_bf16", base.converted(to: .bf16)),
            ("weight_f16", base.converted(to: .f16)),
            ("transposed", transposed),
            ("row2", row),
            ("scalar", Tensor(shape: [], floats: [0.5])),
            ("empty", Tensor(shape: [0, 4], floats: [])),
        ], metadata: ["format": "pt", "producer": "DinoKit", "quote": "\"\\\n\u{7}é"])
    }

    func assertBitIdentical(_ a: TensorStore, _ b: TensorStore, _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.names, b.names, label, file: file, line: line)
        XCTAssertEqual(a.metadata, b.metadata, label, file: file, line: line)
        for (name, t) in a.tensors {
            XCTAssertTrue(b[name].map { sameElements($0, t) } ?? false, "\(label)/\(name)", file: file, line: line)
        }
    }

    /// A tensor name as the fixture script names its expectation file (%XX outside [A-Za-z0-9._-]).
    static func fileStem(_ name: String) -> String {
        name.utf8.map { b -> String in
            let c = Character(Unicode.Scalar(b))
            if b < 0x80, c.isLetter || c.isNumber || c == "." || c == "_" || c == "-" { return String(c) }
            return "%" + String(b, radix: 16, uppercase: true).leftPadded(2)
        }.joined()
    }

    /// Compares each tensor's element bytes and shape with `expected/<stem>/<name>.npy` (bits for
    /// dtypes NumPy lacks), and its widening to Float with `<name>.f32.npy` where present (torch's
    /// own widening); also checks no expectation is left unmatched.
    func assertMatchesExpected(_ store: TensorStore, stem: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let folder = fixturePath("safetensors/expected/\(stem)")
        guard FileManager.default.fileExists(atPath: folder) else {
            return XCTAssertTrue(store.isEmpty, "\(stem): no expectations, so no tensors", file: file, line: line)
        }
        let listed = Set(try FileManager.default.contentsOfDirectory(atPath: folder).filter {
            $0.hasSuffix(".npy") && !$0.hasSuffix(".f32.npy")
        })
        XCTAssertEqual(listed, Set(store.names.map { Self.fileStem($0) + ".npy" }), stem, file: file, line: line)
        for (name, t) in store.tensors {
            let label = "\(stem)/\(name)"
            let expected = try NPY.read(path: "\(folder)/\(Self.fileStem(name)).npy")
            XCTAssertEqual(t.shape, expected.shape, label, file: file, line: line)
            XCTAssertEqual(t.dtype.size, expected.dtype.size, label, file: file, line: line)
            if ![.bf16, .f8e4m3, .f8e5m2].contains(t.dtype) {
                XCTAssertEqual(t.dtype, expected.dtype, label, file: file, line: line)
            }
            XCTAssertEqual(elementBytes(t), elementBytes(expected), "\(label): element bytes differ", file: file, line: line)
            let widenedPath = "\(folder)/\(Self.fileStem(name)).f32.npy"
            if FileManager.default.fileExists(atPath: widenedPath) {
                let widened = try NPY.read(path: widenedPath).floats()
                let ours = t.floats()
                XCTAssertEqual(ours.count, widened.count, label, file: file, line: line)
                for (i, (x, y)) in zip(ours, widened).enumerated() where !(x.bitPattern == y.bitPattern || (x.isNaN && y.isNaN)) {
                    XCTFail("\(label)[\(i)]: \(x) (0x\(String(x.bitPattern, radix: 16))), torch \(y)", file: file, line: line)
                    break
                }
            }
        }
    }
}

private extension String {
    func leftPadded(_ n: Int) -> String { String(repeating: "0", count: Swift.max(0, n - count)) + self }
}

private extension TensorStore {
    func removing(_ name: String) -> TensorStore {
        var copy = self
        copy.remove(name)
        return copy
    }
}
