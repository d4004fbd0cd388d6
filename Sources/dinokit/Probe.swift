import ArgumentParser
import Datasets
import Evaluation
import Foundation
import Images
import Kernels
import Reporting

extension ProbeExperiment.Classifier: ExpressibleByArgument {}

struct Probe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Frozen-feature evaluation: logistic regression (sklearn's defaults) and DINOv2's weighted k-NN.",
        discussion: """
        Features come from CIFAR-10 (--weights W --cifar10 DIR, binary or python version; resized \
        32 -> 224 bicubic with CIFAR's mean and std), from ImageFolder trees (--weights W --train DIR \
        --test DIR; DINOv2's eval preset, 256 -> centre 224), or from .npy files (--train-features, \
        --train-labels, --test-features, --test-labels).

        The classifier is sklearn's LogisticRegression(C, max_iter), fitted to the same objective \
        with the same L-BFGS stopping rule; k-NN is DINOv2's protocol (cosine similarity, \
        softmax(sim / T) over the max(k) nearest neighbours). --precision runs the model's linear \
        layers at that precision for the features; the classifiers are the same. With --cache, \
        extracted features are kept and reused only for the same weights bytes, model, precision, \
        preprocessing and images. --report DIR writes report.json, confusion.png and misclassified.png.

        The CIFAR-10 experiment with the official ViT-S/14 weights: dinokit probe --weights \
        dinov2_vits14_pretrain.pth --cifar10 cifar-10-batches-bin/ --cache features/ --report report/
        """)

    @Option(help: "Model weights (any format DinoKit reads); needed for image datasets.")
    var weights: String?

    @Option(name: .customLong("cifar10"), help: "CIFAR-10 folder (cifar-10-batches-bin/, cifar-10-batches-py/ or their parent).")
    var cifar10: String?

    @Option(help: "Training ImageFolder tree (one subfolder per class).")
    var train: String?

    @Option(help: "Test ImageFolder tree.")
    var test: String?

    @Option(name: .customLong("train-features"), help: "Training features .npy, (N, D) float.")
    var trainFeatures: String?

    @Option(name: .customLong("train-labels"), help: "Training labels .npy, (N,) integers.")
    var trainLabels: String?

    @Option(name: .customLong("test-features"), help: "Test features .npy.")
    var testFeatures: String?

    @Option(name: .customLong("test-labels"), help: "Test labels .npy.")
    var testLabels: String?

    @Option(help: "Which classifiers to run: logreg, knn or both.")
    var classifier: ProbeExperiment.Classifier = .both

    // .unconditional so "--C -1" reaches validate() and its message, not "missing value".
    @Option(name: .customLong("C"), parsing: .unconditional, help: "Inverse L2 regularisation strength (sklearn's C).")
    var C: Double = 1.0

    @Option(name: .customLong("max-iter"), help: "L-BFGS iterations at most (sklearn's max_iter).")
    var maxIter: Int = 1000

    @Option(name: .customLong("k"), help: "k for k-NN; a list (10,20,100,200) or repeated.")
    var k: [String] = ["20"]

    @Option(help: "k-NN softmax temperature T.")
    var temperature: Double = 0.07

    @Option(help: "Feature cache folder: features are extracted once and reused while weights, model, precision, preprocessing and images match.")
    var cache: String?

    @Option(help: "Write report.json, confusion.png and misclassified.png into this folder.")
    var report: String?

    @Option(help: "Images per forward batch.")
    var batch: Int = 64

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Preprocessing preset: cifar (resize to a square, CIFAR mean/std) or eval (resize shorter side, centre crop, ImageNet mean/std). Default: cifar for --cifar10, eval otherwise.")
    var preset: String?

    @Option(help: "Override the preset's resize: the square size (cifar) or the shorter side (eval).")
    var resize: Int?

    @Option(help: "Override the preset's centre crop size (eval; adds a crop to cifar).")
    var crop: Int?

    @Option(help: "Override the normalisation mean, three comma-separated values.")
    var mean: String?

    @Option(help: "Override the normalisation std, three comma-separated values.")
    var std: String?

    @OptionGroup var jsonOption: JSONOption

    @OptionGroup var progress: QuietOption

    func validate() throws {
        guard C > 0, C.isFinite else { throw ValidationError("--C must be a positive number (sklearn's C, the inverse of the L2 strength), not \(C)") }
    }

    func run() throws {
        var experiment = ProbeExperiment(source: try source())
        if case .features = experiment.source, modelOptions.precision != .f32 {
            throw ValidationError("--precision applies to features extracted from images; --train-features are used as they are")
        }
        experiment.weights = weights
        experiment.numHeads = modelOptions.numHeads
        experiment.precision = modelOptions.precision
        experiment.preprocess = try preprocessing(for: experiment.source)
        experiment.batchSize = batch
        experiment.cacheDirectory = cache
        experiment.classifier = classifier
        experiment.C = C
        experiment.maxIterations = maxIter
        experiment.ks = try parseKs()
        experiment.temperature = temperature
        experiment.parallelism = modelOptions.parallelism
        experiment.loading = try modelOptions.loading()
        experiment.showProgress = !progress.quiet && ProgressBar.stderrIsTerminal
        let quiet = progress.quiet
        experiment.log = { message in
            if !quiet { FileHandle.standardError.write(Data("dinokit: \(message)\n".utf8)) }
        }
        guard batch > 0 else { throw ValidationError("--batch must be positive") }
        guard maxIter >= 0 else { throw ValidationError("--max-iter must not be negative") }

        if let report {
            try checkOutputs(folders: [(report, ProbeReport.fileNames)], inputs: Array(inputs().values) + [cache])
        }
        let outcome = try experiment.run()
        var written: [String] = []
        if let report {
            written = try ProbeReport.write(outcome, settings: .init(C: C, maxIterations: maxIter, ks: experiment.ks,
                                                                      temperature: temperature, inputs: inputs()),
                                            to: report)
        }
        if jsonOption.json {
            try printJSON(outcome.result)
        } else {
            printSummary(outcome)
            for path in written { print("wrote \(path)") }
        }
    }

    private func source() throws -> ProbeExperiment.Source {
        let featureOptions = [trainFeatures, trainLabels, testFeatures, testLabels]
        let modes = [cifar10 != nil, train != nil || test != nil, featureOptions.contains { $0 != nil }].filter { $0 }.count
        guard modes == 1 else {
            throw ValidationError("give exactly one of --cifar10 DIR, --train/--test DIRs, or --train-features/--train-labels/--test-features/--test-labels")
        }
        if let cifar10 { return .cifar10(cifar10) }
        if train != nil || test != nil {
            guard let train, let test else { throw ValidationError("--train and --test go together") }
            return .imageFolders(train: train, test: test)
        }
        guard let a = trainFeatures, let b = trainLabels, let c = testFeatures, let d = testLabels else {
            throw ValidationError("--train-features, --train-labels, --test-features and --test-labels go together")
        }
        return .features(train: a, trainLabels: b, test: c, testLabels: d)
    }

    private func preprocessing(for source: ProbeExperiment.Source) throws -> Preprocess? {
        if case .features = source {
            guard preset == nil, resize == nil, crop == nil, mean == nil, std == nil else {
                throw ValidationError("preprocessing options apply to image datasets, not to --train-features")
            }
            return nil
        }
        var p: Preprocess
        switch preset {
        case nil: p = ProbeExperiment.defaultPreprocess(for: source)
        case "cifar": p = .resize(224, interpolation: .bicubic, mean: CIFAR10.mean, std: CIFAR10.std)
        case "eval": p = .eval
        case let other?: throw ValidationError("--preset must be cifar or eval, not '\(other)'")
        }
        if let resize {
            guard resize > 0 else { throw ValidationError("--resize must be positive") }
            if case .exact = p.resizing { p.resizing = .exact(ImageSize(height: resize, width: resize)) } else { p.resizing = .shorterSide(resize) }
        }
        if let crop {
            guard crop > 0 else { throw ValidationError("--crop must be positive") }
            p.crop = ImageSize(height: crop, width: crop)
        }
        if let mean { p.mean = try triple(mean, option: "--mean") }
        if let std { p.std = try triple(std, option: "--std") }
        return p
    }

    private func triple(_ text: String, option: String) throws -> [Double] {
        let values = text.split(separator: ",").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard values.count == 3 else { throw ValidationError("\(option) needs three comma-separated numbers, got '\(text)'") }
        return values
    }

    private func parseKs() throws -> [Int] {
        let ks = try k.flatMap { $0.split(separator: ",") }.map { item -> Int in
            guard let v = Int(item.trimmingCharacters(in: .whitespaces)), v > 0 else {
                throw ValidationError("--k: '\(item)' is not a positive integer")
            }
            return v
        }
        guard !ks.isEmpty else { throw ValidationError("--k needs at least one value") }
        return ks
    }

    private func inputs() -> [String: String] {
        var out: [String: String] = [:]
        for (key, value) in [("weights", weights), ("cifar10", cifar10), ("train", train), ("test", test),
                             ("train_features", trainFeatures), ("train_labels", trainLabels),
                             ("test_features", testFeatures), ("test_labels", testLabels)] {
            if let value { out[key] = value }
        }
        return out
    }

    private func printSummary(_ outcome: ProbeExperiment.Outcome) {
        func pct(_ v: Double) -> String { String(format: "%.2f%%", 100 * v) }
        print("train \(outcome.trainCount), test \(outcome.testCount), features \(outcome.featureDimension)-d"
            + (outcome.result.precision.map { " (model at \($0))" } ?? "") + ", \(outcome.classes.count) classes")
        if let r = outcome.result.logreg, let model = outcome.logreg {
            let status = model.converged ? "converged" : model.stop.rawValue
            print("logreg (C \(C)): train \(pct(r.trainAccuracy))  test \(pct(r.testAccuracy))  objective \(String(format: "%.6f", r.objective))  "
                + "iterations \(r.iterations) (\(status))  fit \(String(format: "%.2f", r.fitSeconds)) s")
        }
        if let knn = outcome.result.knn {
            print("k-NN (T \(temperature)): " + knn.map { "k=\($0.k) test \(pct($0.testAccuracy))" }.joined(separator: "  "))
        }
        print("\nper-class accuracy (\(outcome.confusionSource)):")
        let rows = outcome.classes.indices.map { i in
            [outcome.classes[i], outcome.confusion.perClassAccuracy[i].map(pct) ?? "-", String(outcome.confusion.counts[i].reduce(0, +))]
        }
        print(renderTable(["class", "accuracy", "test images"], rows, rightAligned: [1, 2]))
        print("\nconfusion matrix (\(outcome.confusionSource); rows actual, columns predicted):")
        let header = [""] + outcome.classes.indices.map(String.init)
        let matrix = outcome.confusion.counts.enumerated().map { i, row in ["\(i) \(outcome.classes[i])"] + row.map(String.init) }
        print(renderTable(header, matrix, rightAligned: Set(1...Swift.max(1, outcome.classes.count))))
    }
}
