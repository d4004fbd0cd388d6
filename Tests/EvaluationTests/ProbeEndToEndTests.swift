import Datasets
import DINOv2
import Evaluation
import Foundation
import Kernels
import TestSupport
import XCTest

/// `probe --cifar10` end to end on the CIFAR-format fixture with the tiny model: features
/// extracted by DinoKit's model and preprocessing, classifiers fitted, accuracies reported —
/// compared with the official pipeline (torchvision CIFAR10 + transforms, the official model,
/// sklearn, NumPy k-NN) that Scripts/fixtures/probe.py ran on the same files.
final class ProbeEndToEndTests: XCTestCase {
    func experiment(_ source: ProbeExperiment.Source, cache: String? = nil) -> ProbeExperiment {
        tinyModelProbe(source, cache: cache)
    }

    /// One extraction serves three checks: the binary layout end to end, the features against
    /// the official model's, and the python layout — whose images are the same, so its features
    /// come from the content-keyed cache — end to end again.
    func testCIFARBothLayoutsMatchTheOfficialPipeline() throws {
        let reference = try CIFARReference.load()
        let cache = makeTemporaryDirectory("probe-cache")
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let messages = MessageLog()
        var outcomes: [ProbeExperiment.Outcome] = []
        for layout in ["cifar-10-batches-bin", "cifar-10-batches-py"] {
            var e = experiment(.cifar10(fixturePath("cifar/" + layout)), cache: cache)
            e.log = { messages.append($0) }
            let outcome = try e.run()
            outcomes.append(outcome)
            let r = outcome.result
            XCTAssertEqual(r.classes, reference.classes)
            XCTAssertEqual(outcome.trainLabels, reference.train_labels)
            XCTAssertEqual(outcome.testLabels, reference.test_labels)
            let logreg = try XCTUnwrap(r.logreg)
            XCTAssertEqual(logreg.trainAccuracy, reference.logreg.train_accuracy, accuracy: 0.003, layout)
            XCTAssertEqual(logreg.testAccuracy, reference.logreg.test_accuracy, accuracy: 0.003, layout)
            XCTAssertEqual(logreg.objective, reference.logreg.objective, accuracy: 1e-4 * reference.logreg.objective, layout)
            XCTAssertEqual(r.knn?.map(\.k), [10, 20])
            for (mine, theirs) in zip(r.knn ?? [], reference.knn) {
                XCTAssertEqual(mine.testAccuracy, theirs.test_accuracy, accuracy: 0.003, "\(layout) k=\(mine.k)")
            }
            XCTAssertEqual(outcome.knn?.predictions, reference.knn_predictions, layout)
            XCTAssertEqual(outcome.logregTestPredictions, reference.logreg_test_predictions, layout)
            XCTAssertEqual(r.precision, "f32", layout)
            XCTAssertEqual(r.confusion.flatMap { $0 }.reduce(0, +), reference.test_count)
            print("probe \(layout): logreg train \(logreg.trainAccuracy) (\(reference.logreg.train_accuracy)) test \(logreg.testAccuracy) "
                + "(\(reference.logreg.test_accuracy)) objective \(logreg.objective) (\(reference.logreg.objective)) iterations "
                + "\(logreg.iterations) (\(reference.logreg.iterations)); knn \(r.knn!.map(\.testAccuracy))")
        }
        XCTAssertEqual(messages.all.filter { $0.contains("extracted") }.count, 2, "\(messages.all)")
        XCTAssertEqual(messages.all.filter { $0.contains("reusing") }.count, 2, "\(messages.all)")
        XCTAssertEqual(outcomes[0].result, outcomes[1].result.with(fitSeconds: outcomes[0].result.logreg!.fitSeconds))

        // DinoKit's features (as cached) against the official model's; the cached pair is a
        // valid --train-features/--train-labels input.
        let files = try FileManager.default.contentsOfDirectory(atPath: cache).sorted()
        XCTAssertEqual(files.filter { $0.hasSuffix(".json") }.count, 2)
        XCTAssertFalse(files.contains { $0.contains(".tmp-") }, "\(files)")
        for split in ["train", "test"] {
            let stem = files.first { $0.hasPrefix(split + "-") && $0.hasSuffix(".json") }!.dropLast(5)
            let mine = try FeatureMatrix.load(npy: cache + "/\(stem).npy")
            let theirs = try FeatureMatrix.load(npy: fixturePath("cifar/reference.\(split).npy"))
            XCTAssertEqual([mine.rows, mine.columns], [theirs.rows, theirs.columns])
            XCTAssertLessThan(zip(mine.values, theirs.values).map { abs($0 - $1) }.max()!, 1e-4, split)
            XCTAssertEqual(try LabelFile.load(npy: cache + "/\(stem).labels.npy"),
                           split == "train" ? reference.train_labels : reference.test_labels)
        }
    }

    func testImageFolderTreesRunAndWriteAReport() throws {
        let root = makeTemporaryDirectory("probe-folders")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let fm = FileManager.default
        let files = ["china": ["china_64x48_rgb8.png", "china_257x171_q60_422.jpg", "china_320x272_q90_420.jpg", "china_128x96_restart_markers.jpg"],
                     "flower": ["flower_20x30_tiny.png", "flower_200x150_gray.jpg", "flower_40x30_la8.png", "flower_264x330_q75_444_progressive.jpg"]]
        for (cls, names) in files {
            for split in ["train", "test"] { try fm.createDirectory(atPath: "\(root)/\(split)/\(cls)", withIntermediateDirectories: true) }
            for (i, name) in names.enumerated() {
                try fm.copyItem(atPath: fixturePath("images/" + name), toPath: "\(root)/\(i < 3 ? "train" : "test")/\(cls)/\(name)")
            }
        }
        var e = experiment(.imageFolders(train: root + "/train", test: root + "/test"))
        e.ks = [1, 3]
        let outcome = try e.run()
        XCTAssertEqual(outcome.classes, ["china", "flower"])
        XCTAssertEqual(outcome.trainLabels, [0, 0, 0, 1, 1, 1])
        XCTAssertEqual(outcome.testLabels, [0, 1])
        XCTAssertEqual(outcome.featureDimension, 32)
        let written = try ProbeReport.write(outcome, settings: .init(C: 1, maxIterations: 1000, ks: [1, 3], temperature: 0.07, inputs: [:]),
                                            to: root + "/report")
        XCTAssertEqual(written.map { ($0 as NSString).lastPathComponent }.first, "report.json")
        XCTAssertTrue(written.contains { $0.hasSuffix("misclassified.png") })
    }

    func testFeatureInputAndErrors() throws {
        let set = try ProbeManifest.load().sets.first { $0.name == "binary" }!
        var e = ProbeExperiment(source: .features(train: fixturePath("probe/" + set.files["train"]!), trainLabels: fixturePath("probe/" + set.files["train_labels"]!),
                                                  test: fixturePath("probe/" + set.files["test"]!), testLabels: fixturePath("probe/" + set.files["test_labels"]!)))
        e.maxIterations = set.max_iter
        e.ks = set.knn.ks
        e.temperature = set.knn.temperature
        e.showProgress = false
        let outcome = try e.run()
        XCTAssertEqual(outcome.classes, ["3", "7"])
        XCTAssertEqual(outcome.result.logreg!.testAccuracy, set.sklearn.test_accuracy, accuracy: 0.003)
        XCTAssertEqual(outcome.result.knn!.map(\.testAccuracy), set.knn.test_accuracy)

        // Image datasets need weights; mismatched labels are named.
        XCTAssertThrowsError(try ProbeExperiment(source: .cifar10(fixturePath("cifar"))).run()) { error in
            XCTAssertTrue("\(error)".contains("--weights"), "\(error)")
        }
        var bad = e
        bad.source = .features(train: fixturePath("probe/" + set.files["train"]!), trainLabels: fixturePath("probe/" + set.files["test_labels"]!),
                               test: fixturePath("probe/" + set.files["test"]!), testLabels: fixturePath("probe/" + set.files["test_labels"]!))
        XCTAssertThrowsError(try bad.run()) { error in
            XCTAssertTrue("\(error)".contains("100 labels for 200 rows"), "\(error)")
        }
    }
}

/// Collects log lines from the experiment (its `log` is `@Sendable`).
final class MessageLog: @unchecked Sendable {
    private var lines: [String] = []
    private let lock = NSLock()
    func append(_ s: String) { lock.lock(); lines.append(s); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return lines }
}

extension ProbeResult {
    func with(fitSeconds: Double) -> ProbeResult {
        var r = self
        r.logreg?.fitSeconds = fitSeconds
        return r
    }
}
