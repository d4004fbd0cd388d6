import DINOv2
import Foundation
import Formats
@testable import ONNXExport
import TensorStore
import TestSupport
import XCTest

/// `export-onnx --dtype bf16` and `--dtype int8`: which initializers change type, the nodes that
/// bring them back to float32 or multiply them as integers, and what reading the file gives back.
/// The numbers under onnxruntime (vs the official goldens, and int8 vs a NumPy implementation of
/// the rule) are Scripts/onnx-check's.
final class ReducedPrecisionExportTests: XCTestCase {
    static let linearModules = ["attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"]

    func build(_ set: String, _ configure: (inout ExportOptions) -> Void) throws -> ONNXModel {
        try DINOv2ONNXExporter.build(store: ONNXFixtures.weights(set), options: ONNXFixtures.options(configure)).model
    }

    func metadata(_ m: ONNXModel) -> [String: String] { Dictionary(uniqueKeysWithValues: m.metadata.map { ($0.key, $0.value) }) }

    /// The v3 sets' weights, skipping when Fixtures/golden holds no DINOv3 sets.
    func v3Weights(_ set: String) throws -> TensorStore {
        let path = fixturePath("golden/\(set)/model.safetensors")
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("Fixtures/golden/\(set) is absent") }
        return try Safetensors.read(path: path)
    }

    // MARK: - bf16

    func testBF16ExportStoresEveryWeightAsBFloat16AndCastsItToFloat() throws {
        let source = try ONNXFixtures.weights("tiny-reg")
        let m = try build("tiny-reg") { $0.dtype = .bf16; $0.imageSize = .dynamic }
        let g = m.graph
        for name in source.names {
            let i = try XCTUnwrap(g.initializer(named: name), name)
            XCTAssertEqual(i.tensor.dtype, .bf16, name)
            // Each is read through exactly one Cast to FLOAT.
            let casts = g.nodes.filter { $0.opType == "Cast" && $0.inputs == [name] }
            if name == "mask_token" { XCTAssertTrue(casts.isEmpty); continue }
            XCTAssertEqual(casts.count, 1, name)
            XCTAssertEqual(casts.first?.attributes.first?.name, "to")
            if case let .int(to)? = casts.first?.attributes.first?.value { XCTAssertEqual(Int32(to), ONNXDataType.float, name) }
        }
        // Derived constants stay float32; nothing integer is multiplied.
        XCTAssertTrue(g.initializers.filter { $0.name.hasPrefix("dinokit::const/f") }.allSatisfy { $0.tensor.dtype == .f32 })
        XCTAssertFalse(g.nodes.contains { $0.opType == "MatMulInteger" })
        XCTAssertEqual(metadata(m)["dinokit.weights_dtype"], "BF16")
    }

    func testBF16ExportReadsBackAsTheTorchRoundedWeights() throws {
        let dir = makeTemporaryDirectory("onnx-bf16")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = try ONNXFixtures.weights("tiny-swiglu")
        let path = try ONNXFixtures.export("tiny-swiglu", in: dir) { $0.dtype = .bf16 }
        let back = try ONNXModelReader.read(path: path)
        let want = try source.converted(to: .bf16)
        XCTAssertEqual(back.names.sorted(), want.names.sorted())
        for (name, t) in want.tensors { XCTAssertTrue(try XCTUnwrap(back[name], name).bitwiseEqual(t), name) }
        // Half the bytes of the f32 export (the graph adds a few hundred bytes of nodes).
        let f32 = try ONNXFixtures.export("tiny-swiglu", in: dir, name: "f32") { _ in }
        let sizeBF16 = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        let sizeF32 = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: f32)[.size] as? Int)
        XCTAssertLessThan(Double(sizeBF16), 0.6 * Double(sizeF32))
    }

    // MARK: - int8

    /// The rule in its plainest form, for the comparison below: per row, max|w| / 127, rint.
    func plainQuantized(_ w: [Float], rows: Int) -> (q: [Int8], scales: [Float]) {
        let cols = w.count / rows
        var q = [Int8](), scales = [Float]()
        for r in 0..<rows {
            let row = Array(w[(r * cols)..<((r + 1) * cols)])
            let m = row.map { abs($0) }.max() ?? 0
            let s: Float = m == 0 ? 1 : m / 127
            scales.append(s)
            q += row.map { Int8(max(-127, min(127, rint($0 / s)))) }
        }
        return (q, scales)
    }

    func testInt8ExportStoresEveryLinearWeightQuantizedPerOutputChannel() throws {
        let source = try ONNXFixtures.weights("tiny-plain")
        let m = try build("tiny-plain") { $0.dtype = .i8 }
        let g = m.graph
        let linear = [HubNames.patchWeight] + (0..<2).flatMap { i in Self.linearModules.map { HubNames.block(i, $0 + ".weight") } }
        for name in linear {
            let w = try XCTUnwrap(source[name])
            XCTAssertNil(g.initializer(named: name), "\(name) is stored quantized only")
            let q = try XCTUnwrap(g.initializer(named: "dinokit::int8/" + name), name).tensor
            let s = try XCTUnwrap(g.initializer(named: "dinokit::int8/\(name).scale"), name).tensor
            XCTAssertEqual(q.dtype, .i8)
            XCTAssertEqual(q.shape, w.shape)
            XCTAssertEqual(s.dtype, .f32)
            XCTAssertEqual(s.shape.dims, [w.shape[0]])
            let want = plainQuantized(w.floats(), rows: w.shape[0])
            XCTAssertEqual(q.floats().map { Int8($0) }, want.q, name)
            XCTAssertEqual(s.floats().map(\.bitPattern), want.scales.map(\.bitPattern), name)
        }
        // Every other weight is float32 under its hub name.
        for name in source.names where !linear.contains(name) {
            XCTAssertEqual(try XCTUnwrap(g.initializer(named: name), name).tensor.dtype, .f32, name)
        }
        let ops = g.nodes.map(\.opType)
        XCTAssertEqual(ops.filter { $0 == "MatMulInteger" }.count, linear.count)
        XCTAssertFalse(ops.contains("Conv"), "the patch embedding is unfolded into the int8 GEMM")
        // The only float MatMuls left are attention's two per block.
        XCTAssertEqual(ops.filter { $0 == "MatMul" }.count, 2 * 2)
        XCTAssertEqual(metadata(m)["dinokit.weights_dtype"], "I8")
        XCTAssertEqual(metadata(m)["dinokit.quantization"], "int8 (dynamic per-token, MatMulInteger)")
    }

    func testInt8ActivationsAreQuantizedPerTokenWithRoundHalfEvenAndClip() throws {
        for opset in [17, 18] {
            let g = try build("tiny-plain") { $0.dtype = .i8; $0.opset = opset; $0.imageSize = .dynamic }.graph
            let mm = try XCTUnwrap(g.nodes.first { $0.opType == "MatMulInteger" && $0.name.hasPrefix("/blocks.0/attn/qkv") })
            let producers = Dictionary(g.nodes.flatMap { n in n.outputs.map { ($0, n) } }, uniquingKeysWith: { a, _ in a })
            // q_a = Clip(Round(Div(x, s_a)), -127, 127), read as Cast<UINT8>(q_a + 128) with zero point 128
            let zeroPoint = try XCTUnwrap(g.initializer(named: mm.inputs[2])).tensor
            XCTAssertEqual(zeroPoint.dtype, .u8)
            XCTAssertEqual(zeroPoint.shape.dims, [])
            XCTAssertEqual(zeroPoint.floats(), [128])
            let cast = try XCTUnwrap(producers[mm.inputs[0]])
            XCTAssertEqual(cast.opType, "Cast")
            if case let .int(to)? = cast.attributes.first?.value { XCTAssertEqual(Int32(to), ONNXDataType.uint8) }
            let shift = try XCTUnwrap(producers[cast.inputs[0]])
            XCTAssertEqual(shift.opType, "Add")
            XCTAssertEqual(g.initializer(named: shift.inputs[1])?.tensor.floats(), [128])
            let clip = try XCTUnwrap(producers[shift.inputs[0]])
            XCTAssertEqual(clip.opType, "Clip")
            XCTAssertEqual(clip.inputs[1...].map { g.initializer(named: $0)?.tensor.floats() }, [[-127], [127]])
            let round = try XCTUnwrap(producers[clip.inputs[0]])
            XCTAssertEqual(round.opType, "Round")
            let div = try XCTUnwrap(producers[round.inputs[0]])
            XCTAssertEqual(div.opType, "Div")
            XCTAssertEqual(producers[div.inputs[0]]?.opType, "LayerNormalization", "norm1's output, per token")
            // s_a = Where(max == 0, 1, max / 127), max = ReduceMax(Abs(x)) over the last axis.
            let scale = try XCTUnwrap(producers[div.inputs[1]])
            XCTAssertEqual(scale.opType, "Where")
            let reduce = try XCTUnwrap(g.nodes.first { $0.opType == "ReduceMax" && $0.name.hasPrefix("/blocks.0/attn/qkv") })
            if opset >= 18 {
                XCTAssertEqual(g.initializer(named: reduce.inputs[1])?.tensor.shape.dims, [1])
            } else {
                XCTAssertEqual(reduce.inputs.count, 1)
                XCTAssertTrue(reduce.attributes.contains { $0.name == "axes" }, "opset 17: axes as an attribute")
            }
            // (float(acc) · s_a) · s_w + bias
            let consumers = { (v: String) in g.nodes.filter { $0.inputs.contains(v) } }
            let back = try XCTUnwrap(consumers(mm.outputs[0]).first)
            XCTAssertEqual(back.opType, "Cast")
            let mulA = try XCTUnwrap(consumers(back.outputs[0]).first)
            XCTAssertEqual(mulA.opType, "Mul")
            XCTAssertEqual(mulA.inputs[1], scale.outputs[0])
            let mulW = try XCTUnwrap(consumers(mulA.outputs[0]).first)
            XCTAssertEqual(mulW.inputs[1], "dinokit::int8/blocks.0.attn.qkv.weight.scale")
            XCTAssertEqual(consumers(mulW.outputs[0]).first?.opType, "Add")
        }
    }

    func testInt8DINOv3QuantizesNorm2OnceForW1AndW2() throws {
        let store = try v3Weights("tiny-v3-swiglu")
        let g = try DINOv2ONNXExporter.build(store: store, options: ONNXFixtures.options { $0.dtype = .i8; $0.imageSize = .dynamic })
            .model.graph
        let products = g.nodes.filter { $0.opType == "MatMulInteger" }
        // patch + (qkv, proj, w1, w2, w3) per block; w1 and w2 read the same quantized norm2.
        XCTAssertEqual(products.count, 1 + 5 * 2)
        XCTAssertEqual(g.nodes.filter { $0.opType == "ReduceMax" }.count, 1 + 4 * 2)
        let w1 = try XCTUnwrap(products.first { $0.name.hasPrefix("/blocks.0/mlp/w1") })
        let w2 = try XCTUnwrap(products.first { $0.name.hasPrefix("/blocks.0/mlp/w2") })
        XCTAssertEqual(w1.inputs[0], w2.inputs[0])
        // The masked key bias is still folded into the float bias the int8 qkv adds.
        XCTAssertNotNil(g.initializer(named: "dinokit::blocks.0.attn.qkv.masked_bias"))
    }

    func testInt8ExportReadsBackAsTheDequantizedWeights() throws {
        let dir = makeTemporaryDirectory("onnx-int8")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = try ONNXFixtures.weights("tiny-reg")
        let path = try ONNXFixtures.export("tiny-reg", in: dir) { $0.dtype = .i8; $0.imageSize = .dynamic }
        let back = try ONNXModelReader.read(path: path)
        XCTAssertEqual(back.names.sorted(), source.names.sorted(), "hub names")
        for (name, t) in source.tensors {
            let got = try XCTUnwrap(back[name], name)
            XCTAssertEqual(got.dtype, .f32, name)
            guard GraphExporter.isInt8Linear(name) else { XCTAssertTrue(got.bitwiseEqual(t), name); continue }
            let (q, scales) = plainQuantized(t.floats(), rows: t.shape[0])
            let cols = t.elementCount / t.shape[0]
            XCTAssertEqual(got.floats(), q.indices.map { Float(q[$0]) * scales[$0 / cols] }, name)
            // Lossy, but within half a step of every weight.
            XCTAssertTrue(zip(got.floats(), t.floats()).enumerated().allSatisfy { abs($1.0 - $1.1) <= 0.5 * scales[$0 / cols] * 1.0001 }, name)
        }
        XCTAssertNoThrow(try Config.detect(hubStore: back), "the read-back store is a model DinoKit runs")
    }

    func testInt8ReaderRefusesAQuantizedWeightWithoutItsScales() throws {
        let dir = makeTemporaryDirectory("onnx-int8-hostile")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let q = ProtoBytes.tensor(name: "dinokit::int8/blocks.0.attn.qkv.weight", dims: [2, 2], dataType: 3, raw: [1, 2, 3, 4])
        let wrongScale = ProtoBytes.tensor(name: "dinokit::int8/blocks.0.attn.qkv.weight.scale", dims: [3], dataType: 1,
                                           raw: floatBytes([1, 1, 1]))
        for (label, inits) in [("missing", [q]), ("wrong shape", [q, wrongScale])] {
            let path = dir + "/m.onnx"
            try write(ProtoBytes.model(initializers: inits, metadata: [("dinokit.version", "test")]), to: path)
            XCTAssertThrowsError(try ONNXModelReader.read(path: path), label) { e in
                XCTAssertTrue("\(e)".contains("blocks.0.attn.qkv.weight"), "\(label): \(e)")
            }
        }
    }

    func testInt8RefusesNonFiniteLinearWeightsByName() throws {
        var store = try ONNXFixtures.weights("tiny-plain")
        var w = try XCTUnwrap(store["blocks.1.mlp.fc2.weight"]).floats()
        w[5] = .infinity
        store["blocks.1.mlp.fc2.weight"] = try Tensor(shape: [32, 128], floats: w)
        XCTAssertThrowsError(try DINOv2ONNXExporter.build(store: store, options: ONNXFixtures.options { $0.dtype = .i8 })) { e in
            XCTAssertTrue("\(e)".contains("blocks.1.mlp.fc2.weight"), "\(e)")
        }
    }
}
