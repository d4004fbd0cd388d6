import DINOv2
import Foundation
import Formats
@testable import ONNXExport
import TensorStore
import TestSupport
import XCTest

/// Export -> read back: the initializers are the source weights, bit for bit, under their hub
/// names, whatever the size mode, dtype or storage (raw_data or external data).
final class ExportRoundTripTests: XCTestCase {
    func assertSameWeights(_ got: TensorStore, _ want: TensorStore, _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.names.sorted(), want.names.sorted(), "\(label): names", file: file, line: line)
        for (name, t) in want.tensors {
            guard let g = got[name] else { XCTFail("\(label): \(name) missing", file: file, line: line); continue }
            XCTAssertTrue(g.bitwiseEqual(t), "\(label): \(name) differs", file: file, line: line)
        }
    }

    func testStaticAndDynamicExportsReadBackBitIdentical() throws {
        let dir = makeTemporaryDirectory("onnx-roundtrip")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for set in ONNXFixtures.sets {
            let source = try ONNXFixtures.weights(set)
            for (tag, size) in [("224", ExportOptions.ImageSize.fixed(height: 224, width: 224)),
                                ("168x252", .fixed(height: 168, width: 252)), ("dynamic", .dynamic)] {
                let path = try ONNXFixtures.export(set, in: dir, name: "\(set)-\(tag)") { $0.imageSize = size }
                let back = try ONNXModelReader.read(path: path)
                assertSameWeights(back, source, "\(set) \(tag)")
                XCTAssertEqual(back.metadata["num_heads"], "2", "\(set) \(tag): head count travels with the export")
                XCTAssertEqual(back.metadata[ONNXModelReader.MetadataKey.version], "test")
                // The read-back store drives DinoKit's own model (config detection included).
                let config = try Config.detect(hubStore: back)
                XCTAssertEqual(config.numHeads, 2)
            }
        }
    }

    func testRawDataInitializersAreViewsOfTheMappedFile() throws {
        let dir = makeTemporaryDirectory("onnx-mapped")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try ONNXFixtures.export("tiny-plain", in: dir)
        let back = try ONNXModelReader.read(path: path)
        XCTAssertTrue(try XCTUnwrap(back["pos_embed"]).storage.isMapped, "raw_data is mapped, not copied")
    }

    func testF16ExportHoldsTorchRoundedWeights() throws {
        let dir = makeTemporaryDirectory("onnx-f16")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = try ONNXFixtures.weights("tiny-reg")
        let path = try ONNXFixtures.export("tiny-reg", in: dir) { $0.dtype = .f16; $0.imageSize = .dynamic }
        let back = try ONNXModelReader.read(path: path)
        assertSameWeights(back, try source.converted(to: .f16), "f16")
        XCTAssertTrue(back.tensors.values.allSatisfy { $0.dtype == .f16 })
    }

    func testExternalDataExportReadsBackFromTheSideFile() throws {
        let dir = makeTemporaryDirectory("onnx-external")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = try ONNXFixtures.weights("tiny-swiglu")
        let path = dir + "/model.onnx"
        let summary = try DINOv2ONNXExporter.export(store: source, to: path, options: ONNXFixtures.options {
            $0.externalData = true
            $0.imageSize = .dynamic
        })
        XCTAssertEqual(summary.externalDataPath, path + ".data")
        XCTAssertTrue(FileManager.default.fileExists(atPath: path + ".data"))
        let model = try ONNXModelReader.readModel(path: path)
        XCTAssertEqual(model.externalDataFiles, ["model.onnx.data"])
        let back = try ONNXModelReader.weights(of: model)
        assertSameWeights(back, source, "external")
        // Tensors of at least the threshold live in the side file; the model file stays small.
        let big = try XCTUnwrap(back["pos_embed"])
        XCTAssertTrue(big.storage.isMapped)
        let modelSize = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        XCTAssertLessThan(modelSize, summary.weightBytes / 4)
    }

    /// Past protobuf's 2 GB limit the weights must go to external data; the same switch at a
    /// lowered limit, with the side file's offsets aligned as onnx's writer aligns them.
    func testModelsOverTheProtobufLimitSwitchToExternalData() throws {
        let dir = makeTemporaryDirectory("onnx-auto-external")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = try ONNXFixtures.weights("tiny-plain")
        var options = ONNXFixtures.options()
        options.automaticExternalDataLimit = 100_000
        let summary = try DINOv2ONNXExporter.export(store: source, to: dir + "/big.onnx", options: options)
        XCTAssertEqual(summary.externalDataPath, dir + "/big.onnx.data")
        XCTAssertNotNil(summary.note)
        assertSameWeights(try ONNXModelReader.read(path: dir + "/big.onnx"), source, "automatic external data")

        let built = try DINOv2ONNXExporter.build(store: source, options: options).model
        let layout = ExternalDataLayout(location: "x.data", initializers: built.graph.initializers, threshold: 1024)
        XCTAssertFalse(layout.entries.isEmpty)
        XCTAssertTrue(layout.entries.values.allSatisfy { $0.offset % 64 == 0 && $0.length >= 1024 })
        XCTAssertNil(layout.entries["norm.weight"], "tensors under the threshold stay in the model")
    }

    func testNonBackboneTensorsAreReportedNotExported() throws {
        var store = try ONNXFixtures.weights("tiny-plain")
        try store.insert(Tensor(shape: [3], floats: [1, 2, 3]), named: "head.weight")
        let dir = makeTemporaryDirectory("onnx-ignored")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let summary = try DINOv2ONNXExporter.export(store: store, to: dir + "/m.onnx", options: ONNXFixtures.options())
        XCTAssertEqual(summary.ignored, ["head.weight"])
        XCTAssertNil(try ONNXModelReader.read(path: dir + "/m.onnx")["head.weight"])
    }
}
