import Formats
import Foundation
import TensorStore
import TestSupport
@testable import Training
import XCTest

/// Exports of a run read back bit-identical to its checkpoint.
final class RunExportTests: XCTestCase {
    func testExportsRoundTrip() throws {
        var c = SSLRunResumeTests.runConfig()
        c.epochs = 1
        let source = KeyedNoiseSource(images: 8, batchSize: 4, seed: c.seed)
        let run = makeTemporaryDirectory("sslrun-export")
        defer { try? FileManager.default.removeItem(atPath: run) }
        try SSLRun(folder: run, config: c, source: source, model: SSLRunResumeTests.model(c, total: 2), parallelism: .serial).run()
        let (model, _, info) = try RunCheckpoint.read(path: try RunCheckpoint.path(run: run))
        XCTAssertEqual(info.step, 2)

        for (name, layout) in [("hub.pth", Layout.hub), ("hub.safetensors", .hub), ("timm.safetensors", .timm)] {
            let out = (run as NSString).appendingPathComponent(name)
            _ = try RunExport.export(run: run, to: out, layout: layout)
            let back = try KeyLayouts.canonicalize(try Checkpoint.read(path: out).store).store
            XCTAssertEqual(back.count, model.names.filter { $0.hasPrefix("teacher.backbone.") }.count, name)
            for n in back.names {
                XCTAssertEqual(back[n]?.floats(), model["teacher.backbone." + n]?.floats(), "\(name): \(n)")
            }
        }
        let hf = (run as NSString).appendingPathComponent("hf/")
        _ = try RunExport.export(run: run, to: hf, layout: nil)
        let hfBack = try KeyLayouts.canonicalize(try Checkpoint.read(path: hf).store).store
        for n in hfBack.names { XCTAssertEqual(hfBack[n]?.floats(), model["teacher.backbone." + n]?.floats(), "hf: \(n)") }

        let training = (run as NSString).appendingPathComponent("training.pth")
        _ = try RunExport.export(run: run, to: training, layout: .training)
        let contents = try TorchCheckpoint.read(path: training)
        XCTAssertEqual(contents.root.dictValue?["iteration"]?.intValue, 2)
        let state = try SSLStart.trainingState(contents.store)
        let expected = model.names.filter { !$0.hasPrefix("optimizer.") }
        XCTAssertEqual(state.names, expected)
        for n in expected { XCTAssertEqual(state[n]?.floats(), model[n]?.floats(), "training: \(n)") }
        XCTAssertTrue(FileManager.default.fileExists(atPath: (run as NSString).appendingPathComponent("loss.png")))
    }
}
