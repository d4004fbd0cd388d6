import Formats
import Foundation
import TensorStore
import TestSupport
import XCTest

/// Fixtures/pth/expected.json, written by Scripts/fixtures/pth.py from torch and NumPy: what each
/// checkpoint must read as.
enum PthExpected {
    struct TensorRow {
        var name: String
        var dtype: DType
        var shape: [Int]
        var strides: [Int]
        var offset: Int
        var storageGroup: Int
        var data: [UInt8]
    }

    struct File {
        var kind: String
        var tensors: [TensorRow]
        var metadata: [String: String]
    }

    struct Entry {
        var name: String
        var method: Int
        var headerOffset: Int
        var dataOffset: Int
        var size: Int
        var compressedSize: Int
        var crc32: UInt32
    }

    nonisolated(unsafe) static let json: [String: Any] = {
        guard let data = FileManager.default.contents(atPath: fixturePath("pth/expected.json")),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
        return object
    }()

    static var checkpointNames: [String] {
        json.keys.filter { $0.hasSuffix(".pth") }.sorted()
    }

    static func file(_ name: String) throws -> File {
        let f = try XCTUnwrap(json[name] as? [String: Any], "expected.json has no \(name)")
        let rows = try XCTUnwrap(f["tensors"] as? [[String: Any]])
        return File(
            kind: f["kind"] as? String ?? "",
            tensors: try rows.map { r in
                TensorRow(name: r["name"] as? String ?? "",
                          dtype: try XCTUnwrap(DType(rawValue: r["dtype"] as? String ?? "")),
                          shape: r["shape"] as? [Int] ?? [], strides: r["strides"] as? [Int] ?? [],
                          offset: r["offset"] as? Int ?? -1, storageGroup: r["storage_group"] as? Int ?? -1,
                          data: hex(r["data"] as? String ?? ""))
            },
            metadata: f["metadata"] as? [String: String] ?? [:])
    }

    static func entries(_ name: String) throws -> [Entry] {
        let all = try XCTUnwrap(json["zip_entries"] as? [String: Any])
        let rows = try XCTUnwrap(all[name] as? [[String: Any]], "no zip entries for \(name)")
        return rows.map { r in
            Entry(name: r["name"] as? String ?? "", method: r["method"] as? Int ?? -1,
                  headerOffset: r["header_offset"] as? Int ?? -1, dataOffset: r["data_offset"] as? Int ?? -1,
                  size: r["size"] as? Int ?? -1, compressedSize: r["compressed_size"] as? Int ?? -1,
                  crc32: UInt32(r["crc32"] as? Int ?? 0))
        }
    }

    static var zipEntryFixtures: [String] {
        ((json["zip_entries"] as? [String: Any])?.keys).map { $0.sorted() } ?? []
    }

    static func hex(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count / 2)
        var high: UInt8?
        for c in s.utf8 {
            let v: UInt8 = c <= 57 ? c - 48 : (c | 0x20) - 87
            if let h = high { out.append(h << 4 | v); high = nil } else { high = v }
        }
        return out
    }

    /// Asserts that `store` holds exactly the tensors torch saved: names in order, dtype, shape, and
    /// the element bytes (compared bit for bit), plus the same strides and storage offsets.
    static func assertStore(_ store: TensorStore, matches expected: File, _ label: String,
                            checkLayout: Bool = true, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(store.names, expected.tensors.map(\.name), "\(label): tensor names", file: file, line: line)
        for row in expected.tensors {
            guard let t = store[row.name] else {
                XCTFail("\(label): missing \(row.name)", file: file, line: line)
                continue
            }
            XCTAssertEqual(t.dtype, row.dtype, "\(label) \(row.name) dtype", file: file, line: line)
            XCTAssertEqual(t.shape.dims, row.shape, "\(label) \(row.name) shape", file: file, line: line)
            if checkLayout {
                XCTAssertEqual(t.strides, row.strides, "\(label) \(row.name) strides", file: file, line: line)
                XCTAssertEqual(t.offset, row.offset, "\(label) \(row.name) storage offset", file: file, line: line)
            }
            let bytes = t.withContiguousBytes { Array($0) }
            XCTAssertEqual(bytes, row.data, "\(label) \(row.name) values", file: file, line: line)
        }
    }

    /// Tensors torch saved on one storage share one `Storage` here; others do not.
    static func assertSharing(_ store: TensorStore, matches expected: File, _ label: String,
                              file: StaticString = #filePath, line: UInt = #line) {
        for a in expected.tensors {
            for b in expected.tensors where a.name < b.name {
                guard let ta = store[a.name], let tb = store[b.name] else { continue }
                XCTAssertEqual(ta.storage === tb.storage, a.storageGroup == b.storageGroup,
                               "\(label): \(a.name) and \(b.name) storage sharing", file: file, line: line)
            }
        }
    }
}
