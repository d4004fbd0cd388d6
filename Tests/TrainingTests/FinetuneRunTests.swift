import DINOv2
import Formats
import Foundation
import Kernels
import TensorStore
import TestSupport
import XCTest
@testable import Training

/// `train finetune` end to end on a tiny ImageFolder (Fixtures/finetune/images: 3 classes of 12
/// PNGs and one broken file, drawn by Scripts/fixtures/finetune_ref.py) with the tiny official
/// backbone: validation accuracy beats chance, and every file of the run folder exists and parses.
final class FinetuneRunTests: XCTestCase {
    let weights = fixturePath("finetune/backbone.safetensors")
    let images = fixturePath("finetune/images")

    func settings(_ mode: FinetuneMode) -> FinetuneSettings {
        var s = FinetuneSettings.defaults(for: mode)
        s.imageSize = 56
        s.resize = 64
        s.valFraction = 0.34
        s.seed = 3
        return s
    }

    func testStratifiedSplitIsSeededAndKeepsEveryClass() {
        let labels = [0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2]
        let a = DataSplit.stratified(indices: Array(labels.indices), labels: labels, classes: 3, fraction: 0.2, seed: 9)
        let b = DataSplit.stratified(indices: Array(labels.indices), labels: labels, classes: 3, fraction: 0.2, seed: 9)
        XCTAssertEqual(a, b)
        XCTAssertEqual(Set(a.train).union(a.validation), Set(labels.indices))
        XCTAssertTrue(Set(a.train).isDisjoint(with: a.validation))
        // round(0.2·n), at least one and at most n − 1 per class.
        XCTAssertEqual(a.validation.map { labels[$0] }.sorted(), [0, 1, 2, 2])
        let c = DataSplit.stratified(indices: Array(labels.indices), labels: labels, classes: 3, fraction: 0.2, seed: 10)
        XCTAssertNotEqual(a.validation, c.validation)
    }

    func testLinearFinetuneBeatsChanceAndWritesItsRunFolder() throws {
        let out = makeTemporaryDirectory("finetune-linear")
        defer { try? FileManager.default.removeItem(atPath: out) }
        var s = settings(.linear)
        s.epochs = 40
        s.lr = 0.5
        s.batchSize = 8
        s.features = .clsAvgpool
        let run = FinetuneRun(weights: weights, data: images, out: out, settings: s, parallelism: Parallelism(threads: 2))
        let summary = try run.run()

        XCTAssertEqual(summary.classes, ["circles", "squares", "stripes"])
        XCTAssertEqual(summary.skipped.map { ($0.path as NSString).lastPathComponent }, ["broken.png"])
        XCTAssertEqual(summary.trainImages + summary.validationImages, 36)
        XCTAssertEqual(summary.validationImages, 12)
        XCTAssertEqual(summary.epochs.count, 40)
        let last = try XCTUnwrap(summary.epochs.last)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(last.valAccuracy), 0.75, "chance is 1/3")
        XCTAssertLessThan(last.trainLoss, summary.epochs[0].trainLoss)

        try checkRunFolder(out, epochs: 40, featureWidth: 32, backbone: false)
        let metrics = try lines(out + "/metrics.jsonl")
        XCTAssertEqual(metrics.last?["val_acc"] as? Double, last.valAccuracy)

        // Same seed, same run.
        let again = makeTemporaryDirectory("finetune-linear")
        defer { try? FileManager.default.removeItem(atPath: again) }
        let second = try FinetuneRun(weights: weights, data: images, out: again, settings: s, parallelism: Parallelism(threads: 2)).run()
        XCTAssertEqual(second.epochs.map(\.trainLoss), summary.epochs.map(\.trainLoss))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: again + "/head.safetensors")),
                       try Data(contentsOf: URL(fileURLWithPath: out + "/head.safetensors")))
    }

    func testFullFinetuneTrainsTheBackboneAndWritesItsRunFolder() throws {
        let out = makeTemporaryDirectory("finetune-full")
        defer { try? FileManager.default.removeItem(atPath: out) }
        var s = settings(.full)
        s.epochs = 2
        s.batchSize = 4
        s.imageSize = 28
        s.resize = 32
        let summary = try FinetuneRun(weights: weights, data: images, out: out, settings: s,
                                      parallelism: Parallelism(threads: 2)).run()
        XCTAssertEqual(summary.epochs.count, 2)
        XCTAssertTrue(summary.epochs.allSatisfy { $0.trainLoss.isFinite && ($0.valLoss ?? .nan).isFinite })
        try checkRunFolder(out, epochs: 2, featureWidth: 16, backbone: true)

        // The fine-tuned backbone loads as a model and differs from the start.
        let tuned = try Safetensors.read(path: out + "/backbone.safetensors")
        let start = try Safetensors.read(path: weights)
        _ = try Model(store: tuned)
        XCTAssertEqual(Set(tuned.names), Set(start.names))
        XCTAssertNotEqual(tuned["blocks.0.attn.qkv.weight"]?.floats(), start["blocks.0.attn.qkv.weight"]?.floats())
        XCTAssertEqual(tuned["mask_token"]?.floats(), start["mask_token"]?.floats(), "no gradient reaches the mask token")
    }

    func testSeparateValidationFolderIsUsedWithoutASplit() throws {
        let out = makeTemporaryDirectory("finetune-valdata")
        defer { try? FileManager.default.removeItem(atPath: out) }
        var s = settings(.linear)
        s.epochs = 3
        let summary = try FinetuneRun(weights: weights, data: images, validationData: images, out: out, settings: s,
                                      parallelism: Parallelism(threads: 2)).run()
        XCTAssertEqual(summary.trainImages, 36)
        XCTAssertEqual(summary.validationImages, 36)
        XCTAssertEqual(summary.skipped.count, 2, "the broken file is reported for both folders")
        XCTAssertEqual(summary.confusion.flatMap { $0 }.reduce(0, +), 36)
    }

    func testFullFinetuneIsReproducibleForASeed() throws {
        var s = settings(.full)
        s.epochs = 1
        s.warmupEpochs = 0
        s.batchSize = 4
        s.imageSize = 28
        s.resize = 32
        var heads: [Data] = []
        for _ in 0..<2 {
            let out = makeTemporaryDirectory("finetune-full-seed")
            defer { try? FileManager.default.removeItem(atPath: out) }
            _ = try FinetuneRun(weights: weights, data: images, out: out, settings: s, parallelism: Parallelism(threads: 2)).run()
            heads.append(try Data(contentsOf: URL(fileURLWithPath: out + "/backbone.safetensors")))
        }
        XCTAssertEqual(heads[0], heads[1])
    }

    func checkRunFolder(_ out: String, epochs: Int, featureWidth: Int, backbone: Bool) throws {
        for name in ["config.json", "split.json", "summary.json"] {
            XCTAssertNoThrow(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/" + name))), name)
        }
        let metrics = try lines(out + "/metrics.jsonl")
        XCTAssertEqual(metrics.count, epochs)
        for key in ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr"] {
            XCTAssertNotNil(metrics.first?[key], "metrics.jsonl lacks \(key)")
        }
        let head = try Safetensors.read(path: out + "/head.safetensors")
        XCTAssertEqual(head["weight"]?.shape.dims, [3, featureWidth])
        XCTAssertEqual(head["bias"]?.shape.dims, [3])
        let (_, names) = try LinearHead.load(head, file: "head.safetensors")
        XCTAssertEqual(names, ["circles", "squares", "stripes"])
        let png = try Data(contentsOf: URL(fileURLWithPath: out + "/confusion.png"))
        XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        XCTAssertEqual(FileManager.default.fileExists(atPath: out + "/backbone.safetensors"), backbone)
    }

    func lines(_ path: String) throws -> [[String: Any]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }
}
