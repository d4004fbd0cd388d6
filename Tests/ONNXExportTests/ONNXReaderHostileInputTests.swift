import Foundation
import Formats
import TensorStore
import TestSupport
import XCTest

/// Untrusted ONNX files: every broken or hostile input ends in a typed ONNXError, never a crash
/// or a read outside the model's folder.
final class ONNXReaderHostileInputTests: XCTestCase {
    var dir = ""

    override func setUp() { dir = makeTemporaryDirectory("onnx-hostile") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func read(_ bytes: [UInt8], name: String = "m.onnx") throws -> TensorStore {
        let path = dir + "/" + name
        try write(bytes, to: path)
        return try ONNXModelReader.read(path: path)
    }

    func assertONNXError(_ bytes: [UInt8], _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try read(bytes), file: file, line: line) { e in
            XCTAssertTrue(e is ONNXError, "\(type(of: e)): \(e)", file: file, line: line)
            XCTAssertTrue("\(e)".contains(fragment), "\(e)", file: file, line: line)
        }
    }

    func testTruncatedExportsGiveTypedErrors() throws {
        let path = try ONNXFixtures.export("tiny-plain", in: dir) { $0.imageSize = .dynamic }
        let whole = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        var cuts = Array(stride(from: 1, to: whole.count, by: max(1, whole.count / 97)))
        cuts += [whole.count - 1, whole.count - 2, 3, 10]
        var refused = 0
        for cut in cuts {
            do {
                // A cut exactly between two top-level fields (after the graph, before the
                // opsets or metadata) leaves a well-formed, smaller model; any other cut is refused.
                _ = try read(Array(whole[..<cut]), name: "cut.onnx")
            } catch {
                XCTAssertTrue(error is ONNXError, "cut at \(cut): \(type(of: error)) \(error)")
                refused += 1
            }
        }
        XCTAssertGreaterThanOrEqual(refused, cuts.count - 2)
    }

    func testGarbageAndWireErrors() {
        assertONNXError([0x08, 0x08, 0x3A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F], "claims")
        assertONNXError([0x08, 0x08, 0x3A, 0x80], "truncated varint")
        assertONNXError([0x08] + [UInt8](repeating: 0xFF, count: 11), "varint")
        assertONNXError([0x08, 0x08, 0x0B], "wire type")  // a group
        assertONNXError([0x08, 0x08], "no graph")
    }

    func testInitializerContentErrors() {
        func model(_ t: ProtoBytes) -> [UInt8] { ProtoBytes.model(initializers: [t]) }
        assertONNXError(model(.tensor(name: "w", dims: [2, 2], dataType: 1, raw: floatBytes([1, 2, 3]))), "raw_data has 12 bytes")
        assertONNXError(model(.tensor(name: "s", dims: [1], dataType: 8, raw: [1])), "STRING")
        assertONNXError(model(.tensor(name: "w", dims: [-1], dataType: 1, raw: [])), "negative or too large")
        assertONNXError(model(.tensor(name: "w", dims: [1 << 62, 1 << 62], dataType: 1, raw: [])), "negative or too large")
        assertONNXError(model(.tensor(name: "w", dims: [4], dataType: 1)), "0 values")
        assertONNXError(ProtoBytes.model(initializers: [.tensor(name: "w", dims: [1], dataType: 1, raw: floatBytes([1])),
                                                        .tensor(name: "w", dims: [1], dataType: 1, raw: floatBytes([2]))]), "twice")
    }

    func testExternalDataCannotLeaveTheModelsFolder() throws {
        let outside = makeTemporaryDirectory("onnx-outside")
        defer { try? FileManager.default.removeItem(atPath: outside) }
        try write(floatBytes([1, 2, 3, 4]), to: outside + "/secret.bin")
        try write(floatBytes([1, 2, 3, 4]), to: dir + "/data.bin")
        try FileManager.default.createSymbolicLink(atPath: dir + "/link.bin", withDestinationPath: outside + "/secret.bin")
        func ext(_ entries: [(String, String)]) -> [UInt8] {
            ProtoBytes.model(initializers: [.tensor(name: "w", dims: [4], dataType: 1, external: entries)])
        }
        assertONNXError(ext([("location", "../" + (outside as NSString).lastPathComponent + "/secret.bin")]), "'..'")
        assertONNXError(ext([("location", outside + "/secret.bin")]), "not a path relative")
        assertONNXError(ext([("location", "link.bin")]), "resolves outside its folder")
        assertONNXError(ext([("location", "missing.bin")]), "does not exist")
        assertONNXError(ext([("location", "data.bin"), ("offset", "8")]), "holds 8 bytes")
        assertONNXError(ext([("location", "data.bin"), ("offset", "12"), ("length", "16")]), "outside data.bin")
        assertONNXError(ext([("location", "data.bin"), ("offset", "99")]), "past the end")
        assertONNXError(ext([("location", "data.bin"), ("offset", "-4")]), "not a non-negative integer")
        assertONNXError(ext([("location", "data.bin"), ("length", "18446744073709551616")]), "not a non-negative integer")
        assertONNXError(ext([("offset", "0")]), "no location")
        // The same file, read properly.
        let ok = try read(ext([("location", "data.bin"), ("offset", "0"), ("length", "16")]))
        XCTAssertEqual(ok["w"]?.floats(), [1, 2, 3, 4])
    }

    func testTypedFieldsAreDecoded() throws {
        let ints = ProtoBytes.tensor(name: "i", dims: [2], dataType: 7) { t in t.int(7, -5); t.int(7, 1 << 40) }
        let halves = ProtoBytes.tensor(name: "h", dims: [2], dataType: 10) { t in
            var packed = ProtoBytes()
            packed.varint(UInt64(Float16(1.5).bitPattern))
            packed.varint(UInt64(Float16(-0.25).bitPattern))
            t.bytes(5, packed.bytes)
        }
        let floats = ProtoBytes.tensor(name: "f", dims: [3], dataType: 1) { t in t.bytes(4, floatBytes([1.5, -2, 3])) }
        let store = try read(ProtoBytes.model(initializers: [floats, ints, halves]))
        XCTAssertEqual(store["f"]?.floats(), [1.5, -2, 3])
        XCTAssertEqual(store["i"]?.dtype, .i64)
        XCTAssertEqual(store["i"]?.withContiguousBytes { Array($0.bindMemory(to: Int64.self)) }, [-5, 1 << 40])
        XCTAssertEqual(store["h"]?.dtype, .f16)
        XCTAssertEqual(store["h"]?.floats(), [1.5, -0.25])
    }

    func testSniffing() throws {
        let path = try ONNXFixtures.export("tiny-plain", in: dir)
        let head = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)).prefix(64))
        head.withUnsafeBytes { XCTAssertTrue(ONNXModelReader.isONNX(head: $0)) }
        ProtoBytes.model(initializers: []).withUnsafeBytes { XCTAssertTrue(ONNXModelReader.isONNX(head: $0)) }
        for other in ["safetensors/f32.safetensors", "npy/f32.npy", "golden/tiny-plain/model.safetensors"] {
            guard let bytes = try? [UInt8](Data(contentsOf: URL(fileURLWithPath: fixturePath(other))).prefix(64)) else { continue }
            bytes.withUnsafeBytes { XCTAssertFalse(ONNXModelReader.isONNX(head: $0), other) }
        }
        for bytes: [UInt8] in [[], [0x08], [0x08, 0x08], [0x50, 0x4B, 0x03, 0x04], [0x80, 0x02, 0x8A], [0x08, 0x00, 0x12]] {
            bytes.withUnsafeBytes { XCTAssertFalse(ONNXModelReader.isONNX(head: $0), "\(bytes)") }
        }
    }

    /// Nodes nested inside subgraphs are skipped, not recursed into: depth cannot exhaust the
    /// stack. (protobuf-c 1.4's unpacker recurses without a limit and overflows its stack on this
    /// 2.4 MB file.)
    func testDeeplyNestedSubgraphsAreNotARisk() throws {
        // GraphProto { node { attribute { g: GraphProto { ... } } } } 200,000 levels deep. Every
        // wrapper is tag + length + the inner message, so the file is all headers, built inside out.
        func varint(_ v: Int) -> [UInt8] {
            var p = ProtoBytes()
            p.varint(UInt64(v))
            return p.bytes
        }
        var headers: [[UInt8]] = []
        var length = 0
        for _ in 0..<200_000 {
            for field in [6, 5, 1] {  // AttributeProto.g, NodeProto.attribute, GraphProto.node
                let h = varint(field << 3 | 2) + varint(length)
                headers.append(h)
                length += h.count
            }
        }
        var m = ProtoBytes()
        m.int(1, 8)
        m.bytes += varint(7 << 3 | 2) + varint(length)
        for h in headers.reversed() { m.bytes += h }
        let store = try read(m.bytes)
        XCTAssertTrue(store.isEmpty)
        let model = try ONNXModelReader.readModel(path: dir + "/m.onnx")
        XCTAssertEqual(model.nodes.count, 1)
    }

    /// Typed data is decoded into memory: a packed field of n bytes holds up to n varints, each
    /// held as 8 bytes, so it is charged to the read's budget before it is decoded.
    func testTypedDataIsChargedToTheReadsMemoryLimit() throws {
        var packed = ProtoBytes()
        for _ in 0..<1000 { packed.varint(1) }
        let model = ProtoBytes.model(initializers: [.tensor(name: "i", dims: [1000], dataType: 7) { $0.bytes(7, packed.bytes) }])
        try write(model, to: dir + "/typed.onnx")
        XCTAssertEqual(try ONNXModelReader.read(path: dir + "/typed.onnx", limits: ReadLimits(memoryBytes: 1 << 20))["i"]?.elementCount, 1000)
        XCTAssertThrowsError(try ONNXModelReader.read(path: dir + "/typed.onnx", limits: ReadLimits(memoryBytes: 4000))) { error in
            guard case .store(_, .memoryLimitExceeded(_, 8000, 4000))? = error as? ONNXError else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("initializer 'i'"), "\(error)")
        }
    }

    /// Names and external-data locations come from the file: escaped, one line. A length near
    /// Int.max used to overflow while the message was being built (offset + length).
    func testNamesAreEscapedAndHugeLengthsDoNotTrap() throws {
        try write(floatBytes([1, 2, 3, 4]), to: dir + "/data.bin")
        func oneLine(_ e: Error) -> Bool { !"\(e)".unicodeScalars.contains { $0.properties.generalCategory == .control } }
        let evil = "w\n\u{1b}[2J"
        for bytes in [ProtoBytes.model(initializers: [.tensor(name: evil, dims: [-1], dataType: 1, raw: [])]),
                      ProtoBytes.model(initializers: [.tensor(name: "w", dims: [4], dataType: 1, external: [("location", "x\n\u{1b}[2J.bin")])])] {
            XCTAssertThrowsError(try read(bytes)) { e in
                XCTAssertTrue(e is ONNXError && oneLine(e), "\(e)")
                XCTAssertTrue("\(e)".contains("\\n\\u{1b}[2J"), "\(e)")
            }
        }
        assertONNXError(ProtoBytes.model(initializers: [.tensor(name: "w", dims: [4], dataType: 1,
                                                                external: [("location", "data.bin"), ("offset", "12"), ("length", "\(Int.max)")])]),
                        "lie outside data.bin")
    }

    /// Name recovery for torch.onnx exports follows MatMul outputs to their Adds. 20,000 MatMuls
    /// that all write "y", read by 20,000 Adds, was 4 × 10^8 steps (minutes); each value is now
    /// followed once.
    func testNameRecoveryIsLinearInTheGraph() throws {
        var g = ProtoBytes()
        func node(_ op: String, _ inputs: [String], _ output: String) {
            var n = ProtoBytes()
            for i in inputs { n.string(1, i) }
            n.string(2, output)
            n.string(4, op)
            g.message(1, n)
        }
        for _ in 0..<20_000 { node("MatMul", ["x", "W"], "y") }
        for _ in 0..<20_000 { node("Add", ["y", "b"], "z") }
        g.message(5, .tensor(name: "patch_embed.proj.weight", dims: [1], dataType: 1, raw: floatBytes([1])))
        g.message(5, .tensor(name: "W", dims: [1, 1], dataType: 1, raw: floatBytes([2])))
        var m = ProtoBytes()
        m.int(1, 8)
        m.message(7, g)
        let start = Date()
        let store = try read(m.bytes)
        XCTAssertNotNil(store["patch_embed.proj.weight"])
        XCTAssertLessThan(Date().timeIntervalSince(start), 20, "name recovery is super-linear")
    }
}
