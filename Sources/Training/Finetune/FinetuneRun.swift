import Datasets
import DINOv2
import Dispatch
import Formats
import Foundation
import Images
import Kernels
import Reporting
import TensorStore

/// `dinokit train finetune`: a labelled ImageFolder, a seeded stratified split (or a separate
/// validation folder), then either a linear head on frozen features extracted once, or the
/// backbone and the head trained together. The run folder gets:
///
///     config.json          settings, inputs, classes
///     split.json           the training and validation files, and the skipped ones with reasons
///     metrics.jsonl        one line per epoch: epoch, train_loss, train_acc, val_loss, val_acc, lr, seconds
///     head.safetensors     weight (C, F), bias (C); metadata: classes (JSON), features, feature_dim
///     backbone.safetensors full mode: the fine-tuned backbone, hub names, Float32, metadata num_heads
///     confusion.png        the final head on the validation split (or on training without one)
///     summary.json         what the command prints with --json
///
/// Files are written atomically; metrics.jsonl is rewritten whole after every epoch.
public final class FinetuneRun {
    public let weights: String
    public let data: String
    public let validationData: String?
    public let out: String
    public let settings: FinetuneSettings
    public var numHeads: Int?
    public var parallelism: Parallelism
    public var showProgress: Bool
    /// Status lines (skipped files, files written).
    public var log: (String) -> Void = { _ in }
    /// Called after every epoch (for live reporting).
    public var onEpoch: (FinetuneEpochMetrics) -> Void = { _ in }

    public init(weights: String, data: String, validationData: String? = nil, out: String, settings: FinetuneSettings,
                parallelism: Parallelism = .fromEnvironment, showProgress: Bool = false) {
        self.weights = weights
        self.data = data
        self.validationData = validationData
        self.out = out
        self.settings = settings
        self.parallelism = parallelism
        self.showProgress = showProgress
    }

    /// The images a run trains and validates on.
    struct Dataset {
        var classes: [String]
        var train: ImageSubset
        var validation: ImageSubset
        var skipped: [SkippedImage]
    }

    public func run() throws -> FinetuneSummary {
        try settings.validate()
        let start = monotonicSeconds()
        // Weights first: a backbone this run cannot use is refused before the run folder exists.
        let store = try loadWeights(path: weights)
        let hub = try KeyLayouts.canonicalize(store).store
        let config = try Config.detect(hubStore: hub, numHeads: numHeads ?? store.metadata["num_heads"].flatMap { Int($0) })
        try OutputPath.createFolder(out)
        let dataset = try loadDataset()
        for s in dataset.skipped { log("skipped \(s.path): \(s.reason)") }
        guard dataset.train.count > 0 else {
            throw TrainingError.config(file: data, message: "no readable training images")
        }
        try writeJSON(configFile(config: config, classes: dataset.classes), to: "config.json")
        try writeJSON(splitFile(dataset), to: "split.json")

        var written = ["config.json", "split.json", "metrics.jsonl", "head.safetensors"]
        let outcome: Outcome
        switch settings.mode {
        case .linear:
            outcome = try runLinear(dataset, model: try Model(hubStore: hub, config: config, parallelism: parallelism))
        case .full:
            outcome = try runFull(dataset, hub: hub, config: config)
            written.append("backbone.safetensors")
        }
        let extra = ["features": settings.features.rawValue, "mode": settings.mode.rawValue, "weights": weights]
        try Safetensors.write(try outcome.head.store(classNames: dataset.classes, extra: extra), to: path("head.safetensors"))

        let hasValidation = dataset.validation.count > 0
        let (actual, predicted) = hasValidation ? outcome.validationPredictions : outcome.trainPredictions
        let confusion = try ConfusionMatrix(classes: dataset.classes, actual: actual, predicted: predicted)
        let source = hasValidation ? "validation" : "train"
        let picture = try ReportPictures.confusionMatrix(
            confusion, title: "train finetune (\(settings.mode.rawValue), \(settings.features.rawValue)): \(source), "
                + String(format: "%.1f%%", 100 * confusion.accuracy))
        try AtomicFileWriter.write(to: path("confusion.png")) { try $0.write(try PNGEncoder.encode(picture)) }
        written += ["confusion.png", "summary.json"]
        let summary = FinetuneSummary(mode: settings.mode, features: settings.features, classes: dataset.classes,
                                      trainImages: dataset.train.count, validationImages: dataset.validation.count,
                                      skipped: dataset.skipped, epochs: outcome.metrics,
                                      perClassAccuracy: confusion.perClassAccuracy, confusion: confusion.counts,
                                      confusionSource: source, out: out, files: written.sorted(),
                                      seconds: monotonicSeconds() - start)
        try writeJSON(summary, to: "summary.json")
        return summary
    }

    // MARK: - Data

    func loadDataset() throws -> Dataset {
        let folder = try ImageFolder(root: data)
        let (readable, skipped) = folder.scanReadable(threads: parallelism.threads)
        guard let validationData else {
            let split = DataSplit.stratified(indices: readable, labels: folder.labels, classes: folder.classes.count,
                                             fraction: settings.valFraction, seed: settings.seed)
            return Dataset(classes: folder.classes, train: ImageSubset(base: folder, indices: split.train),
                           validation: ImageSubset(base: folder, indices: split.validation), skipped: skipped)
        }
        let other = try ImageFolder(root: validationData)
        let unknown = other.classes.filter { !folder.classes.contains($0) }
        guard unknown.isEmpty else {
            throw TrainingError.config(file: validationData, message: "classes \(unknown.prefix(5)) have no folder under \(data); validation classes must be training classes")
        }
        let (valReadable, valSkipped) = other.scanReadable(threads: parallelism.threads)
        let remapped = RelabelledFolder(base: other, classes: folder.classes,
                                        labels: other.labels.map { folder.classes.firstIndex(of: other.classes[$0]) ?? 0 })
        return Dataset(classes: folder.classes, train: ImageSubset(base: folder, indices: readable),
                       validation: ImageSubset(base: remapped, indices: valReadable), skipped: skipped + valSkipped)
    }

    // MARK: - Linear

    struct Outcome {
        var head: LinearHead
        var metrics: [FinetuneEpochMetrics]
        var trainPredictions: (actual: [Int], predicted: [Int])
        var validationPredictions: (actual: [Int], predicted: [Int])
    }

    private var evalPreprocess: Preprocess { .eval(resize: settings.resize, crop: settings.imageSize) }

    func runLinear(_ dataset: Dataset, model: Model) throws -> Outcome {
        let extractor = FinetuneFeatureExtractor(model: model, preprocess: evalPreprocess, kind: settings.features,
                                                 batchSize: settings.batchSize)
        func features(_ images: ImageSubset, _ label: String) throws -> [Float] {
            let bar = ProgressBar(label: "extract \(label)", total: images.count, enabled: showProgress)
            defer { bar.finish() }
            return try extractor.extract(images) { bar.update($0) }
        }
        let trainX = try features(dataset.train, "train")
        let valX = dataset.validation.count > 0 ? try features(dataset.validation, "validation") : []
        let trainY = dataset.train.labels, valY = dataset.validation.labels
        let f = extractor.width, n = trainY.count, b = Swift.min(settings.batchSize, n)
        let head = LinearHead(classes: dataset.classes.count, features: f)
        head.initialize(seed: settings.seed)
        let grads = ParameterBlock(layout: head.parameters.layout)
        let optimizer = FinetuneOptimizer(settings.optimizerKind, modules: [head.parameters.layout], weightDecay: settings.weightDecay)
        let groups = [FinetuneOptimizer.headGroups(head.parameters.layout)]
        let stepsPerEpoch = (n + b - 1) / b
        let schedule = FinetuneLRSchedule(base: settings.lr, totalSteps: settings.epochs * stepsPerEpoch,
                                          warmupSteps: settings.warmupEpochs * stepsPerEpoch)
        var metrics: [FinetuneEpochMetrics] = []
        let bar = ProgressBar(label: "train head", total: settings.epochs, enabled: showProgress)
        var step = 0, lr = settings.lr
        for epoch in 0..<settings.epochs {
            let epochStart = monotonicSeconds()
            let order = DataSplit.epochOrder(count: n, seed: settings.seed, epoch: epoch)
            for s in 0..<stepsPerEpoch {
                let rows = Array(order[(s * b)..<Swift.min(n, (s + 1) * b)])
                var x = [Float](repeating: 0, count: rows.count * f)
                for (i, r) in rows.enumerated() { x[(i * f)..<((i + 1) * f)] = trainX[(r * f)..<((r + 1) * f)] }
                grads.zero()
                _ = head.trainStep(x: x, labels: rows.map { trainY[$0] }, grads: grads, parallelism: parallelism)
                lr = schedule.value(step: step)
                optimizer.step(params: [head.parameters], grads: [grads], groups: groups, lr: lr, parallelism: parallelism)
                step += 1
            }
            let train = evaluate(head, trainX, trainY)
            let val = valY.isEmpty ? nil : evaluate(head, valX, valY)
            let m = FinetuneEpochMetrics(epoch: epoch + 1, trainLoss: train.loss, trainAccuracy: train.accuracy,
                                         valLoss: val?.loss, valAccuracy: val?.accuracy, lr: lr,
                                         seconds: monotonicSeconds() - epochStart)
            metrics.append(m)
            try writeMetrics(metrics)
            onEpoch(m)
            bar.update(epoch + 1, detail: String(format: "loss %.4f  val acc %@", train.loss, val.map { String(format: "%.1f%%", 100 * $0.accuracy) } ?? "-"))
        }
        bar.finish()
        return Outcome(head: head, metrics: metrics,
                       trainPredictions: (trainY, evaluate(head, trainX, trainY).predictions),
                       validationPredictions: (valY, valY.isEmpty ? [] : evaluate(head, valX, valY).predictions))
    }

    private func evaluate(_ head: LinearHead, _ x: [Float], _ y: [Int]) -> (loss: Double, accuracy: Double, predictions: [Int]) {
        let logits = head.logits(x: x, rows: y.count, parallelism: parallelism)
        let r = y.withUnsafeBufferPointer {
            CrossEntropy.evaluate(logits: logits, labels: $0.baseAddress!, rows: y.count, classes: head.classes, dlogits: nil)
        }
        return (r.loss, y.isEmpty ? 0 : Double(r.correct) / Double(y.count),
                CrossEntropy.predictions(logits: logits, rows: y.count, classes: head.classes))
    }

    // MARK: - Full

    func runFull(_ dataset: Dataset, hub: TensorStore, config: Config) throws -> Outcome {
        let model = try FullFinetuneModel(hubStore: hub, config: config, classes: dataset.classes.count,
                                          features: settings.features, file: weights)
        model.head.initialize(seed: settings.seed)
        let groups = model.parameterGroups(backboneLRScale: settings.backboneLRScale, layerDecay: settings.layerDecay)
        let optimizer = FinetuneOptimizer(settings.optimizerKind, modules: [model.backbone.layout, model.head.parameters.layout],
                                          weightDecay: settings.weightDecay)
        let n = dataset.train.count, b = Swift.min(settings.batchSize, n), s = settings.imageSize
        // The last partial batch is dropped: one set of activations serves every step.
        let stepsPerEpoch = Swift.max(1, n / b)
        let schedule = FinetuneLRSchedule(base: settings.lr, totalSteps: settings.epochs * stepsPerEpoch,
                                          warmupSteps: settings.warmupEpochs * stepsPerEpoch)
        let trainY = dataset.train.labels
        let pipeline = try FinetunePixels(size: s, resize: settings.resize, threads: parallelism.threads)
        var metrics: [FinetuneEpochMetrics] = []
        var step = 0, lr = settings.lr
        var lastTrain: (actual: [Int], predicted: [Int]) = ([], [])
        for epoch in 0..<settings.epochs {
            let epochStart = monotonicSeconds()
            let bar = ProgressBar(label: "epoch \(epoch + 1)/\(settings.epochs)", total: stepsPerEpoch * b, enabled: showProgress)
            let order = DataSplit.epochOrder(count: n, seed: settings.seed, epoch: epoch)
            var lossSum = 0.0, correct = 0, seen = 0
            for k in 0..<stepsPerEpoch {
                let rows = Array(order[(k * b)..<((k + 1) * b)])
                let pixels = try pipeline.train(dataset.train, indices: rows, seed: settings.seed, step: step)
                let labels = rows.map { trainY[$0] }
                let r = try model.forwardBackward(pixels: pixels, labels: labels, height: s, width: s, parallelism: parallelism)
                lr = schedule.value(step: step)
                optimizer.step(params: [model.backbone, model.head.parameters],
                               grads: [model.backboneGradients, model.headGradients], groups: groups, lr: lr,
                               parallelism: parallelism)
                step += 1
                lossSum += r.loss * Double(b)
                correct += r.correct
                seen += b
                bar.update(seen, detail: String(format: "loss %.4f  lr %.2e", lossSum / Double(seen), lr))
            }
            bar.finish()
            let val = dataset.validation.count > 0 ? try evaluateFull(model, dataset.validation, batch: b, pipeline: pipeline) : nil
            let m = FinetuneEpochMetrics(epoch: epoch + 1, trainLoss: lossSum / Double(seen),
                                         trainAccuracy: Double(correct) / Double(seen), valLoss: val?.loss,
                                         valAccuracy: val?.accuracy, lr: lr, seconds: monotonicSeconds() - epochStart)
            metrics.append(m)
            try writeMetrics(metrics)
            try Safetensors.write(try model.backboneStore(), to: path("backbone.safetensors"))
            onEpoch(m)
            if epoch == settings.epochs - 1, dataset.validation.count == 0 {
                let all = try evaluateFull(model, dataset.train, batch: b, pipeline: pipeline)
                lastTrain = (trainY, all.predictions)
            }
        }
        let validation = dataset.validation.count > 0
            ? (dataset.validation.labels, try evaluateFull(model, dataset.validation, batch: b, pipeline: pipeline).predictions)
            : ([], [])
        return Outcome(head: model.head, metrics: metrics, trainPredictions: lastTrain, validationPredictions: validation)
    }

    private func evaluateFull(_ model: FullFinetuneModel, _ images: ImageSubset, batch b: Int,
                              pipeline: FinetunePixels) throws -> (loss: Double, accuracy: Double, predictions: [Int]) {
        let n = images.count, c = model.head.classes, s = settings.imageSize
        var logits: [Float] = []
        logits.reserveCapacity(n * c)
        var first = 0
        while first < n {
            let count = Swift.min(b, n - first)
            var pixels = try pipeline.eval(images, indices: Array(first..<(first + count)))
            pixels += [Float](repeating: 0, count: (b - count) * 3 * s * s)
            logits += try model.logits(pixels: pixels, batch: b, count: count, height: s, width: s, parallelism: parallelism)
            first += count
        }
        let y = images.labels
        let r = y.withUnsafeBufferPointer {
            CrossEntropy.evaluate(logits: logits, labels: $0.baseAddress!, rows: n, classes: c, dlogits: nil)
        }
        return (r.loss, n == 0 ? 0 : Double(r.correct) / Double(n), CrossEntropy.predictions(logits: logits, rows: n, classes: c))
    }

    // MARK: - Files

    private func path(_ name: String) -> String { (out as NSString).appendingPathComponent(name) }

    private func writeJSON<T: Encodable>(_ value: T, to name: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(value)
        try AtomicFileWriter.write(to: path(name)) { try $0.write(Array(data) + [10]) }
    }

    private func writeMetrics(_ metrics: [FinetuneEpochMetrics]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var bytes: [UInt8] = []
        for m in metrics { bytes += Array(try encoder.encode(m)) + [10] }
        try AtomicFileWriter.write(to: path("metrics.jsonl")) { try $0.write(bytes) }
    }

    private struct ConfigFile: Encodable {
        var format = "dinokit-finetune/1"
        var settings: FinetuneSettings
        var weights: String
        var data: String
        var validationData: String?
        var classes: [String]
        var model: String
        var numHeads: Int
        enum CodingKeys: String, CodingKey {
            case format, settings, weights, data, validationData = "val_data", classes, model, numHeads = "num_heads"
        }
    }

    private func configFile(config: Config, classes: [String]) -> ConfigFile {
        ConfigFile(settings: settings, weights: weights, data: data, validationData: validationData, classes: classes,
                   model: config.description, numHeads: config.numHeads)
    }

    private struct SplitFile: Encodable {
        var train: [String]
        var validation: [String]
        var skipped: [SkippedImage]
    }

    private func splitFile(_ d: Dataset) -> SplitFile {
        func paths(_ s: ImageSubset) -> [String] {
            guard let folder = (s.base as? ImageFolder) ?? (s.base as? RelabelledFolder)?.base else { return [] }
            return s.indices.map { folder.paths[$0] }
        }
        return SplitFile(train: paths(d.train), validation: paths(d.validation), skipped: d.skipped)
    }
}

/// An ImageFolder whose labels follow another folder's class list (a validation folder).
struct RelabelledFolder: LabeledImages {
    let base: ImageFolder
    let classes: [String]
    let labels: [Int]
    var source: String { base.source }
    func image(at index: Int) throws -> RGBImage { try base.image(at: index) }
    func fingerprint() throws -> String { try base.fingerprint() }
}
