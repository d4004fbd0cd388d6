import DINOv2
import Foundation
import Formats
@testable import ONNXExport
import TensorStore
import TestSupport
import XCTest

/// The tiny golden models (Fixtures/golden/<set>/model.safetensors, written by the real
/// safetensors library from the official weights) and export helpers shared by the ONNX tests.
enum ONNXFixtures {
    static let sets = ["tiny-plain", "tiny-reg", "tiny-swiglu"]

    static func weights(_ set: String) throws -> TensorStore {
        try Safetensors.read(path: fixturePath("golden/\(set)/model.safetensors"))
    }

    static func options(_ configure: (inout ExportOptions) -> Void = { _ in }) -> ExportOptions {
        var o = ExportOptions()
        o.producerVersion = "test"
        configure(&o)
        return o
    }

    /// Exports `set` into a fresh folder; returns the model path.
    static func export(_ set: String, in dir: String, name: String? = nil,
                       _ configure: (inout ExportOptions) -> Void = { _ in }) throws -> String {
        let path = dir + "/" + (name ?? set) + ".onnx"
        _ = try DINOv2ONNXExporter.export(store: weights(set), to: path, options: options(configure))
        return path
    }
}

/// A minimal protobuf encoder for hand-made (and deliberately broken) ONNX files.
struct ProtoBytes {
    var bytes: [UInt8] = []

    mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }

    mutating func tag(_ field: Int, _ wire: Int) { varint(UInt64(field << 3 | wire)) }
    mutating func int(_ field: Int, _ v: Int64) { tag(field, 0); varint(UInt64(bitPattern: v)) }
    mutating func bytes(_ field: Int, _ b: [UInt8]) { tag(field, 2); varint(UInt64(b.count)); bytes += b }
    mutating func string(_ field: Int, _ s: String) { bytes(field, Array(s.utf8)) }
    mutating func message(_ field: Int, _ m: ProtoBytes) { bytes(field, m.bytes) }

    /// A TensorProto.
    static func tensor(name: String, dims: [Int], dataType: Int, raw: [UInt8]? = nil,
                       external: [(String, String)] = [], body: (inout ProtoBytes) -> Void = { _ in }) -> ProtoBytes {
        var t = ProtoBytes()
        for d in dims { t.int(1, Int64(d)) }
        t.int(2, Int64(dataType))
        t.string(8, name)
        if let raw { t.bytes(9, raw) }
        for (k, v) in external {
            var e = ProtoBytes()
            e.string(1, k)
            e.string(2, v)
            t.message(13, e)
        }
        if !external.isEmpty { t.int(14, 1) }
        body(&t)
        return t
    }

    /// A ModelProto (ir_version 8, opset 18) whose graph holds `initializers`.
    static func model(initializers: [ProtoBytes], metadata: [(String, String)] = []) -> [UInt8] {
        var g = ProtoBytes()
        g.string(2, "g")
        for i in initializers { g.message(5, i) }
        var m = ProtoBytes()
        m.int(1, 8)
        m.string(2, "test")
        m.message(7, g)
        var opset = ProtoBytes()
        opset.string(1, "")
        opset.int(2, 18)
        m.message(8, opset)
        for (k, v) in metadata {
            var e = ProtoBytes()
            e.string(1, k)
            e.string(2, v)
            m.message(14, e)
        }
        return m.bytes
    }
}

func floatBytes(_ xs: [Float]) -> [UInt8] { xs.withUnsafeBytes { Array($0) } }

func write(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}
