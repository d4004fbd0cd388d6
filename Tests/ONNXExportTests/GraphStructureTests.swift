import DINOv2
import Foundation
import Formats
@testable import ONNXExport
import TensorStore
import TestSupport
import XCTest

/// The graph the exporter builds: standard ops only, the requested opset, inputs and outputs
/// named and shaped as the issue states, the position grid baked or resampled as DINOv2 does.
final class GraphStructureTests: XCTestCase {
    static let standardOps: Set<String> = [
        "Conv", "Reshape", "Transpose", "Slice", "Add", "Mul", "Div", "Shape", "Concat", "Expand", "Gather",
        "LayerNormalization", "MatMul", "Softmax", "Erf", "Gelu", "Sigmoid", "Split", "Identity", "Cast",
        "Equal", "And", "If", "Resize",
    ]

    func build(_ set: String, _ configure: (inout ExportOptions) -> Void = { _ in }) throws -> ONNXModel {
        try DINOv2ONNXExporter.build(store: ONNXFixtures.weights(set), options: ONNXFixtures.options(configure)).model
    }

    func ops(_ g: ONNXGraph) -> [String] {
        g.nodes.flatMap { n -> [String] in
            [n.opType] + n.attributes.flatMap { a -> [String] in
                if case let .graph(sub) = a.value { return ops(sub) }
                return []
            }
        }
    }

    func testStaticExportInputsOutputsAndOpset() throws {
        let m = try build("tiny-reg") { $0.imageSize = .fixed(height: 168, width: 252); $0.outputs = [.cls, .patch, .reg, .prenorm] }
        XCTAssertEqual(m.opset, 18)
        XCTAssertEqual(m.irVersion, 8)
        XCTAssertEqual(m.producerName, "DinoKit")
        XCTAssertEqual(m.graph.inputs, [ONNXValueInfo(name: "pixel_values", dims: [.param("batch"), .value(3), .value(168), .value(252)])])
        XCTAssertEqual(m.graph.outputs, [
            ONNXValueInfo(name: "x_norm_clstoken", dims: [.param("batch"), .value(32)]),
            ONNXValueInfo(name: "x_norm_patchtokens", dims: [.param("batch"), .value(12 * 18), .value(32)]),
            ONNXValueInfo(name: "x_norm_regtokens", dims: [.param("batch"), .value(4), .value(32)]),
            ONNXValueInfo(name: "x_prenorm", dims: [.param("batch"), .value(1 + 4 + 12 * 18), .value(32)]),
        ])
        XCTAssertTrue(Set(ops(m.graph)).isSubset(of: Self.standardOps), "\(Set(ops(m.graph)).subtracting(Self.standardOps))")
        XCTAssertFalse(ops(m.graph).contains("Resize"), "a static export bakes the position grid")
        XCTAssertEqual(ops(m.graph).filter { $0 == "LayerNormalization" }.count, 2 * 2 + 1)
        XCTAssertNotNil(m.graph.initializer(named: "dinokit::pos_embed.grid_12x18"))
        let meta = Dictionary(uniqueKeysWithValues: m.metadata.map { ($0.key, $0.value) })
        XCTAssertEqual(meta["dinokit.interpolation"], "official")
        XCTAssertEqual(meta["dinokit.num_heads"], "2")
        XCTAssertEqual(meta["dinokit.version"], "test")
        XCTAssertEqual(meta["dinokit.variant"], "custom")
    }

    func testDefaultOutputsIncludeRegistersOnlyForRegisterModels() throws {
        XCTAssertEqual(try build("tiny-plain").graph.outputs.map(\.name), ["x_norm_clstoken", "x_norm_patchtokens"])
        XCTAssertEqual(try build("tiny-reg").graph.outputs.map(\.name), ["x_norm_clstoken", "x_norm_patchtokens", "x_norm_regtokens"])
    }

    func testNativeSizeUsesTheStoredTable() throws {
        // tiny-swiglu has a 16x16 grid: 224 is its native size (the official skip).
        let m = try build("tiny-swiglu")
        XCTAssertFalse(m.graph.initializers.contains { $0.name.hasPrefix("dinokit::pos_embed") })
        XCTAssertTrue(ops(m.graph).contains("Split") && ops(m.graph).contains("Sigmoid"), "SwiGLU FFN")
    }

    func testDynamicExportResamplesInTheGraph() throws {
        let plain = try build("tiny-plain") { $0.imageSize = .dynamic }
        XCTAssertEqual(plain.graph.inputs[0].dims, [.param("batch"), .value(3), .param("height"), .param("width")])
        XCTAssertEqual(plain.graph.outputs[1].dims, [.param("batch"), .param("patches"), .value(32)])
        let ifNode = try XCTUnwrap(plain.graph.nodes.first { $0.opType == "If" })
        let resize = try XCTUnwrap(resizeNode(ifNode))
        XCTAssertEqual(attribute(resize, "cubic_coeff_a"), "-0.75")
        XCTAssertEqual(attribute(resize, "exclude_outside"), "0")
        XCTAssertNil(attribute(resize, "antialias"))
        XCTAssertEqual(resize.inputs.count, 3, "offset models pass scale factors")

        let reg = try build("tiny-reg") { $0.imageSize = .dynamic }
        let aa = try XCTUnwrap(resizeNode(try XCTUnwrap(reg.graph.nodes.first { $0.opType == "If" })))
        XCTAssertEqual(attribute(aa, "cubic_coeff_a"), "-0.5")
        XCTAssertEqual(attribute(aa, "exclude_outside"), "1")
        XCTAssertEqual(attribute(aa, "antialias"), "1")
        XCTAssertEqual(aa.inputs.count, 4, "register models pass sizes")
    }

    func resizeNode(_ ifNode: ONNXNode) -> ONNXNode? {
        for a in ifNode.attributes {
            if case let .graph(g) = a.value, let r = g.nodes.first(where: { $0.opType == "Resize" }) { return r }
        }
        return nil
    }

    func attribute(_ n: ONNXNode, _ name: String) -> String? {
        guard let a = n.attributes.first(where: { $0.name == name }) else { return nil }
        switch a.value {
        case let .int(v): return String(v)
        case let .float(v): return String(v)
        case let .string(s): return s
        case let .ints(v): return "\(v)"
        case .graph: return "graph"
        }
    }

    func testGeluByOpset() throws {
        XCTAssertTrue(ops(try build("tiny-plain") { $0.opset = 17 }.graph).contains("Erf"))
        let m20 = try build("tiny-plain") { $0.opset = 20 }
        XCTAssertTrue(ops(m20.graph).contains("Gelu"))
        XCTAssertFalse(ops(m20.graph).contains("Erf"))
        XCTAssertEqual(m20.irVersion, 9)
    }

    func testWrittenFileReadsBackWithTheSameGraph() throws {
        let dir = makeTemporaryDirectory("onnx-graph")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try ONNXFixtures.export("tiny-plain", in: dir) { $0.imageSize = .dynamic; $0.opset = 19 }
        let file = try ONNXModelReader.readModel(path: path)
        let built = try build("tiny-plain") { $0.imageSize = .dynamic; $0.opset = 19 }
        XCTAssertEqual(file.irVersion, 9)
        XCTAssertEqual(file.opsetVersion, 19)
        XCTAssertEqual(file.producerName, "DinoKit")
        XCTAssertEqual(file.nodes.map(\.opType), built.graph.nodes.map(\.opType))
        XCTAssertEqual(file.inputs.map(\.typeDescription), ["float[batch,3,height,width]"])
        XCTAssertEqual(file.outputs.map(\.name), ["x_norm_clstoken", "x_norm_patchtokens"])
        XCTAssertEqual(file.initializers.names, built.graph.initializers.map(\.name))
        XCTAssertTrue(ONNXModelReader.isDinoKitExport(file))
    }

    /// The baked grid is DinoKit's interpolation: against F.interpolate (Fixtures/kernels, made
    /// by PyTorch) on the 37x37 grid, for the offset (plain) and antialiased (register) semantics.
    func testBakedGridMatchesPyTorchInterpolate() throws {
        let grid = try NPY.read(path: fixturePath("kernels/grid37.npy"))  // (1, 3, 37, 37)
        let planes = grid.floats()
        var table = [Float](repeating: 0, count: 3 * (1 + 37 * 37))  // (1 + M², D = 3), channels last
        for c in 0..<3 { for i in 0..<(37 * 37) { table[3 + i * 3 + c] = planes[c * 37 * 37 + i] } }
        for (kind, interp) in [("offset", PositionInterpolation(offset: 0.1, antialias: false)),
                               ("size_aa", PositionInterpolation(offset: 0, antialias: true))] {
            for (h, w) in [(16, 16), (12, 18), (46, 46)] {
                let expected = try NPY.read(path: fixturePath("kernels/interp.\(kind).g37.\(h)x\(w).out.npy")).floats()
                let baked = try XCTUnwrap(PositionTable.bakedGrid(table: table, grid: 37, dim: 3, patchRows: h, patchCols: w,
                                                                  imageHeight: h * 14, imageWidth: w * 14, interpolation: interp))
                var worst: Float = 0
                for c in 0..<3 { for i in 0..<(h * w) { worst = max(worst, abs(baked[i * 3 + c] - expected[c * h * w + i])) } }
                XCTAssertLessThanOrEqual(worst, 1e-6, "\(kind) \(h)x\(w)")
            }
        }
        XCTAssertNil(try PositionTable.bakedGrid(table: table, grid: 37, dim: 3, patchRows: 37, patchCols: 37, imageHeight: 518,
                                                 imageWidth: 518, interpolation: .official(registerTokens: 0)), "official skip at 518")
    }

    func testInvalidOptionsAreRefusedWithAMessage() throws {
        func refused(_ set: String, _ configure: (inout ExportOptions) -> Void, _ fragment: String) {
            XCTAssertThrowsError(try build(set, configure)) { e in
                XCTAssertTrue("\(e)".contains(fragment), "\(e)")
            }
        }
        refused("tiny-plain", { $0.outputs = [.reg] }, "no register tokens")
        refused("tiny-plain", { $0.opset = 16 }, "opset 16")
        refused("tiny-plain", { $0.imageSize = .fixed(height: 225, width: 224) }, "multiple of the patch size")
        refused("tiny-reg", { $0.imageSize = .dynamic; $0.opset = 17 }, "opset 18")
        refused("tiny-plain", { $0.dtype = .f64 }, "use F32, F16, BF16, I8")
        XCTAssertThrowsError(try DINOv2ONNXExporter.build(store: TensorStore(), options: ExportOptions()))
    }
}

extension GraphStructureTests {
    func testGraphSummaryDescribesTheExport() throws {
        let dir = makeTemporaryDirectory("onnx-summary")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try ONNXFixtures.export("tiny-reg", in: dir) { $0.imageSize = .dynamic }
        let summary = Dictionary(uniqueKeysWithValues: try ONNXModelReader.readModel(path: path).graphSummary.map { ($0.key, $0.value) })
        XCTAssertEqual(summary["producer"], "DinoKit test")
        XCTAssertEqual(summary["opsets"], "ai.onnx 18")
        XCTAssertEqual(summary["inputs"], "pixel_values float[batch,3,height,width]")
        XCTAssertEqual(summary["outputs"], "x_norm_clstoken float[batch,32]; x_norm_patchtokens float[batch,patches,32]; x_norm_regtokens float[batch,4,32]")
        XCTAssertTrue(summary["nodes"]?.contains("LayerNormalization 5") == true, summary["nodes"] ?? "")
    }
}
