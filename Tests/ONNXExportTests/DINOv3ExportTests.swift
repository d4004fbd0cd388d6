import DINOv2
import Foundation
import Formats
@testable import ONNXExport
import TensorStore
import TestSupport
import XCTest

/// DINOv3 exports of the tiny-v3 golden models: the RoPE sin/cos baked (fixed size) or computed
/// in the graph from the input's shape (dynamic), rotate_half on the patch rows of q and k only,
/// the masked key bias folded, SwiGLU from w1/w2, untied norms, storage tokens in the registers'
/// output, and the hub tensors back bit for bit. The numbers against the official model are
/// Scripts/onnx-check's.
final class DINOv3ExportTests: XCTestCase {
    static let sets = ["tiny-v3-plain", "tiny-v3-swiglu", "tiny-v3-untied"]
    /// What a DINOv3 graph adds to the DINOv2 graph's standard ops.
    static let ropeOps: Set<String> = ["Neg", "Sin", "Cos", "Range", "Unsqueeze", "Sub"]

    /// The set's weights; skips when the tiny-v3 golden sets are not in Fixtures/golden.
    func weights(_ set: String) throws -> TensorStore {
        let path = fixturePath("golden/\(set)/model.safetensors")
        guard FileManager.default.fileExists(atPath: path) else {
            throw XCTSkip("Fixtures/golden/\(set) is absent (the DINOv3 golden sets come from Scripts/make-goldens)")
        }
        return try Safetensors.read(path: path)
    }

    func build(_ set: String, _ configure: (inout ExportOptions) -> Void = { _ in }) throws -> ONNXModel {
        try DINOv2ONNXExporter.build(store: weights(set), options: ONNXFixtures.options(configure)).model
    }

    func ops(_ g: ONNXGraph) -> [String] { g.nodes.map(\.opType) }

    func consumers(of name: String, in g: ONNXGraph) -> [ONNXNode] { g.nodes.filter { $0.inputs.contains(name) } }

    func config(_ set: String) throws -> Config { try Config.detect(hubStore: weights(set)) }

    func testStaticExportBakesTheRopeTables() throws {
        for set in Self.sets {
            let c = try config(set)
            let m = try build(set) { $0.outputs = [.cls, .patch, .reg, .prenorm] }
            let g = m.graph
            XCTAssertEqual([m.opset, m.irVersion], [18, 8], set)
            XCTAssertEqual(g.name, "dinov3")
            XCTAssertEqual(g.inputs, [ONNXValueInfo(name: "pixel_values", dims: [.param("batch"), .value(3), .value(224), .value(224)])])
            XCTAssertEqual(g.outputs, [
                ONNXValueInfo(name: "x_norm_clstoken", dims: [.param("batch"), .value(32)]),
                ONNXValueInfo(name: "x_norm_patchtokens", dims: [.param("batch"), .value(14 * 14), .value(32)]),
                ONNXValueInfo(name: "x_norm_regtokens", dims: [.param("batch"), .value(4), .value(32)]),
                ONNXValueInfo(name: "x_prenorm", dims: [.param("batch"), .value(1 + 4 + 14 * 14), .value(32)]),
            ], set)
            let allowed = GraphStructureTests.standardOps.union(["Neg"])
            XCTAssertTrue(Set(ops(g)).isSubset(of: allowed), "\(set): \(Set(ops(g)).subtracting(allowed))")
            for folded in ["Sin", "Cos", "Range", "Resize", "If"] { XCTAssertFalse(ops(g).contains(folded), "\(set): \(folded)") }
            XCTAssertEqual(ops(g).filter { $0 == "Neg" }.count, 2 * c.depth, "\(set): rotate_half on q and k in every block")
            XCTAssertFalse(g.initializers.contains { $0.name.hasPrefix("dinokit::pos_embed") })

            let periods = try RotaryPositions.periods(hubStore: weights(set), config: c)
            let want = RotaryPositions.tables(periods: periods, patchRows: 14, patchCols: 14)
            let sin = try XCTUnwrap(g.initializer(named: "dinokit::rope_embed.sin_14x14"), set).tensor
            let cos = try XCTUnwrap(g.initializer(named: "dinokit::rope_embed.cos_14x14"), set).tensor
            XCTAssertEqual(sin.shape.dims, [196, c.headDim])
            XCTAssertEqual(sin.floats(), want.sin, set)
            XCTAssertEqual(cos.floats(), want.cos, set)
            // Each table feeds one Mul per rotation: q and k of every block.
            XCTAssertEqual(consumers(of: "dinokit::rope_embed.sin_14x14", in: g).count, 2 * c.depth)

            let meta = Dictionary(uniqueKeysWithValues: m.metadata.map { ($0.key, $0.value) })
            XCTAssertEqual(meta["dinokit.family"], "dinov3")
            XCTAssertNil(meta[ONNXModelReader.MetadataKey.interpolation], "no position table to interpolate")
            XCTAssertTrue(m.docString.hasPrefix("DINOv3 backbone"), m.docString)
        }
    }

    func testDynamicExportComputesTheRopeTablesInTheGraph() throws {
        for set in Self.sets {
            let c = try config(set)
            for opset in [17, 18, 25] {
                let g = try build(set) { $0.imageSize = .dynamic; $0.opset = opset }.graph
                XCTAssertEqual(g.inputs[0].dims, [.param("batch"), .value(3), .param("height"), .param("width")])
                XCTAssertEqual(g.outputs[1].dims, [.param("batch"), .param("patches"), .value(32)])
                let allowed = GraphStructureTests.standardOps.union(Self.ropeOps)
                XCTAssertTrue(Set(ops(g)).isSubset(of: allowed), "\(set) opset \(opset): \(Set(ops(g)).subtracting(allowed))")
                XCTAssertFalse(ops(g).contains("Resize") || ops(g).contains("If"), set)
                // One table for the whole graph, from the input's H and W.
                XCTAssertEqual(ops(g).filter { $0 == "Sin" }.count, 1)
                XCTAssertEqual(ops(g).filter { $0 == "Cos" }.count, 1)
                XCTAssertEqual(ops(g).filter { $0 == "Range" }.count, 2, "rows and columns")
                XCTAssertEqual(ops(g).filter { $0 == "Neg" }.count, 2 * c.depth)
                XCTAssertFalse(g.initializers.contains { $0.name.contains("sin_") || $0.name.contains("cos_") }, "nothing baked")
                let sizes = g.nodes.filter { $0.opType == "Shape" && $0.name.hasPrefix("/rope_embed/") }
                XCTAssertEqual(sizes.map(\.inputs), [["pixel_values"]], "\(set): H and W read from the input")
                let periods = try XCTUnwrap(g.initializer(named: "dinokit::rope_embed.periods"))
                XCTAssertEqual(periods.tensor.floats(), try XCTUnwrap(weights(set)["rope_embed.periods"]).floats())
            }
        }
    }

    /// Only the patch rows turn: q and k are sliced after the 1 + R prefix rows and joined back.
    func testRotationSkipsTheClassAndStorageRows() throws {
        let g = try build("tiny-v3-plain") { $0.imageSize = .dynamic }.graph
        let rope = g.nodes.filter { $0.name.hasPrefix("/blocks.0/attn/rope/") }
        XCTAssertEqual(rope.map(\.opType).filter { $0 == "Slice" }.count, 4, "prefix and patches, of q and of k")
        let five = try XCTUnwrap(g.initializer(named: "dinokit::const/[5]"), "1 cls + 4 storage rows")
        XCTAssertEqual(rope.filter { $0.opType == "Slice" && $0.inputs.contains(five.name) }.count, 4)
        XCTAssertEqual(rope.filter { $0.opType == "Concat" }.count, 4, "rotate_half and the re-join, for q and k")
        let split = try XCTUnwrap(rope.first { $0.opType == "Split" })
        XCTAssertEqual(try XCTUnwrap(g.initializer(named: split.inputs[1])).tensor.shape.dims, [2], "two halves of the head")
    }

    func testMaskedKeyBiasIsFoldedIntoTheExportedBias() throws {
        for set in Self.sets {
            let source = try weights(set)
            let c = try config(set)
            let g = try build(set).graph
            for i in 0..<c.depth {
                let folded = try XCTUnwrap(g.initializer(named: "dinokit::blocks.\(i).attn.qkv.masked_bias"), set).tensor.floats()
                let bias = try XCTUnwrap(source["blocks.\(i).attn.qkv.bias"]).floats()
                let mask = try XCTUnwrap(source["blocks.\(i).attn.qkv.bias_mask"]).floats()
                XCTAssertEqual(folded, zip(bias, mask).map { $0 * $1 }, "\(set) block \(i)")
                XCTAssertTrue(folded[32..<64].allSatisfy { $0 == 0 }, "the key third is masked out")
                XCTAssertTrue(bias[32..<64].contains { $0 != 0 }, "the fixture's stored key bias is not zero, so the fold matters")
                let add = consumers(of: "dinokit::blocks.\(i).attn.qkv.masked_bias", in: g)
                XCTAssertEqual(add.map(\.opType), ["Add"])
                XCTAssertTrue(add[0].name.hasPrefix("/blocks.\(i)/attn/qkv/"), add[0].name)
                // The hub tensors stay (converting back is lossless) but no node reads them.
                XCTAssertTrue(consumers(of: "blocks.\(i).attn.qkv.bias", in: g).isEmpty)
                XCTAssertNotNil(g.initializer(named: "blocks.\(i).attn.qkv.bias_mask"))
            }
        }
    }

    /// The forward's rule refuses a mask left at the official NaN initial value; so does the export.
    func testNaNBiasMaskIsRefusedByName() throws {
        var store = try weights("tiny-v3-plain")
        store["blocks.1.attn.qkv.bias_mask"] = try Tensor(shape: [96], floats: [Float](repeating: .nan, count: 96))
        XCTAssertThrowsError(try DINOv2ONNXExporter.build(store: store, options: ONNXFixtures.options())) { e in
            XCTAssertTrue("\(e)".contains("blocks.1.attn.qkv.bias_mask"), "\(e)")
        }
    }

    func testSwiGLUReadsW1AndW2() throws {
        let g = try build("tiny-v3-swiglu").graph
        for w in ["w1", "w2", "w3"] {
            XCTAssertEqual(consumers(of: "blocks.0.mlp.\(w).weight", in: g).map(\.opType), ["Transpose"], w)
        }
        let mlp = g.nodes.filter { $0.name.hasPrefix("/blocks.0/mlp") }
        XCTAssertFalse(mlp.contains { $0.opType == "Split" }, "no stacked w12 to split")
        XCTAssertEqual(mlp.filter { $0.opType == "Sigmoid" }.count, 1)
    }

    func testUntiedNormsNormTheClassAndStorageRowsWithClsNorm() throws {
        let untied = try build("tiny-v3-untied").graph
        let c = try config("tiny-v3-untied")
        XCTAssertEqual(ops(untied).filter { $0 == "LayerNormalization" }.count, 2 * c.depth + 2)
        let clsNorm = consumers(of: "cls_norm.weight", in: untied)
        XCTAssertEqual(clsNorm.map(\.opType), ["LayerNormalization"])
        let head = try XCTUnwrap(untied.nodes.first { $0.outputs == [clsNorm[0].inputs[0]] })
        XCTAssertEqual(head.opType, "Slice")
        XCTAssertEqual(try XCTUnwrap(untied.initializer(named: head.inputs[2])).tensor.shape.dims, [1])
        XCTAssertEqual(head.inputs[2], "dinokit::const/[5]", "cls + 4 storage rows")

        let plain = try build("tiny-v3-plain").graph
        XCTAssertEqual(ops(plain).filter { $0 == "LayerNormalization" }.count, 2 * (try config("tiny-v3-plain")).depth + 1)
        XCTAssertNil(plain.initializer(named: "cls_norm.weight"))
    }

    func testExportsReadBackBitIdentical() throws {
        let dir = makeTemporaryDirectory("onnx-v3")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for set in Self.sets {
            let source = try weights(set)
            for (tag, size) in [("224", ExportOptions.ImageSize.fixed(height: 224, width: 224)), ("dynamic", .dynamic)] {
                let path = dir + "/\(set)-\(tag).onnx"
                _ = try DINOv2ONNXExporter.export(store: source, to: path, options: ONNXFixtures.options { $0.imageSize = size })
                let file = try ONNXModelReader.readModel(path: path)
                XCTAssertEqual(file.opsetVersion, 18)
                let back = try ONNXModelReader.weights(of: file)
                XCTAssertEqual(back.names.sorted(), source.names.sorted(), "\(set) \(tag)")
                for (name, t) in source.tensors {
                    XCTAssertTrue(try XCTUnwrap(back[name]).bitwiseEqual(t), "\(set) \(tag): \(name)")
                }
                let config = try Config.detect(hubStore: back)
                XCTAssertEqual(config.family, .dinov3)
                XCTAssertEqual(config.architecture, try self.config(set).architecture, "\(set) \(tag)")
            }
        }
    }

    func testF16ExportFoldsTheStoredBias() throws {
        let g = try build("tiny-v3-plain") { $0.dtype = .f16; $0.imageSize = .dynamic }.graph
        XCTAssertEqual(g.initializer(named: "blocks.0.attn.qkv.bias")?.tensor.dtype, .f16)
        let folded = try XCTUnwrap(g.initializer(named: "dinokit::blocks.0.attn.qkv.masked_bias")).tensor
        XCTAssertEqual(folded.dtype, .f32, "derived constants are float32")
        let stored = try weights("tiny-v3-plain").converted(to: .f16)
        let bias = try XCTUnwrap(stored["blocks.0.attn.qkv.bias"]).floats(), mask = try XCTUnwrap(stored["blocks.0.attn.qkv.bias_mask"]).floats()
        XCTAssertEqual(folded.floats(), zip(bias, mask).map { $0 * $1 }, "folded from the weights as the file stores them")
    }
}
