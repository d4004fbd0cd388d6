import Datasets
import DINOv2
import Foundation
import Images
import Kernels
import Reporting

/// The frozen-feature evaluation end to end — the library behind `dinokit probe`: get train and
/// test features (from `.npy` files, or by running a DINOv2 model over CIFAR-10 or ImageFolder
/// trees, cached), fit sklearn's default logistic regression and/or DINOv2's weighted k-NN, and
/// score them.
public struct ProbeExperiment {
    public enum Source: Sendable {
        /// Precomputed features and labels (`.npy`).
        case features(train: String, trainLabels: String, test: String, testLabels: String)
        /// A CIFAR-10 folder, binary or python version (see `CIFAR10`).
        case cifar10(String)
        /// Two ImageFolder trees.
        case imageFolders(train: String, test: String)
    }

    public enum Classifier: String, Sendable, CaseIterable { case logreg, knn, both }

    public var source: Source
    /// Model weights (any format `loadWeights` reads); required for image sources.
    public var weights: String?
    public var numHeads: Int?
    /// The precision of the model's linear layers (`Precision`) when it extracts features; part
    /// of the cache key, stated in the result.
    public var precision = Precision.f32
    /// Preprocessing for image sources; nil: `ProbeExperiment.defaultPreprocess(for:)`.
    public var preprocess: Preprocess?
    public var batchSize = 64
    public var cacheDirectory: String?
    public var classifier = Classifier.both
    public var C = 1.0
    public var maxIterations = 1000
    public var ks = [20]
    public var temperature = 0.07
    public var parallelism = Parallelism.fromEnvironment
    /// How the model holds its weights (`Model.Loading`: in memory, or streamed block by block).
    public var loading = Model.Loading.inMemory
    /// Progress bars on stderr (when it is a terminal).
    public var showProgress = ProgressBar.stderrIsTerminal
    /// One-line status messages (cache reuse, extraction); stderr in the CLI.
    public var log: @Sendable (String) -> Void = { _ in }

    public init(source: Source) { self.source = source }

    /// The experiment's preprocessing for CIFAR (32 → 224 bicubic, CIFAR statistics), DINOv2's
    /// evaluation preset (256 → centre 224, ImageNet statistics) for ImageFolder trees.
    public static func defaultPreprocess(for source: Source) -> Preprocess {
        switch source {
        case .cifar10: return .resize(224, interpolation: .bicubic, mean: CIFAR10.mean, std: CIFAR10.std)
        case .features, .imageFolders: return .eval
        }
    }

    /// Everything a run produced: the `--json` result plus what a report needs.
    public struct Outcome: Sendable {
        public var result: ProbeResult
        public var classes: [String]
        public var trainLabels: [Int]
        public var testLabels: [Int]
        public var logreg: LogisticRegressionModel?
        public var logregTestPredictions: [Int]?
        public var knn: KNNPredictions?
        /// Which predictions the confusion matrix counts ("logreg" or "knn k=20").
        public var confusionSource: String
        public var confusion: ConfusionMatrix
        /// Test predictions behind the confusion matrix (class indices).
        public var predictions: [Int]
        /// Test images, when features were extracted from images (for the gallery).
        public var testImages: (any LabeledImages)?
        public var featureDimension: Int
        public var trainCount: Int { trainLabels.count }
        public var testCount: Int { testLabels.count }
    }

    public func run() throws -> Outcome {
        guard !ks.isEmpty || classifier == .logreg else {
            throw EvaluationError.invalidArgument(what: "--k", detail: "k-NN needs at least one k")
        }
        let data = try loadData()
        var logregModel: LogisticRegressionModel?
        var logregResult: ProbeResult.LogReg?
        var logregPredictions: [Int]?
        if classifier != .knn {
            let bar = ProgressBar(label: "fit logreg", total: maxIterations, enabled: showProgress)
            let model = try LogisticRegression(C: C, maxIterations: maxIterations)
                .fit(data.train, labels: data.trainLabels, parallelism: parallelism) { p in
                    bar.update(p.iteration, detail: String(format: "f %.6f  |g| %.2e", p.f, p.gradientNorm))
                }
            bar.finish(model.converged ? "converged" : model.stop.rawValue, done: model.iterations)
            let testPredictions = try model.predict(data.test, parallelism: parallelism)
            logregModel = model
            logregPredictions = testPredictions
            logregResult = ProbeResult.LogReg(
                trainAccuracy: try model.accuracy(data.train, labels: data.trainLabels, parallelism: parallelism),
                testAccuracy: Classification.accuracy(predicted: testPredictions, actual: data.testLabels),
                objective: model.objective, iterations: model.iterations, fitSeconds: model.fitSeconds)
        }
        var knnPredictions: KNNPredictions?
        if classifier != .logreg {
            let bar = ProgressBar(label: "k-NN", total: data.test.rows, enabled: showProgress)
            knnPredictions = try KNN(ks: ks, temperature: temperature)
                .predict(train: data.train, labels: data.trainLabels, queries: data.test, parallelism: parallelism) { bar.update($0) }
            bar.finish()
        }
        let knnResult = knnPredictions.map { p in
            zip(p.ks, p.accuracies(labels: data.testLabels)).map { ProbeResult.KNNAccuracy(k: $0, testAccuracy: $1) }
        }
        let (source, predictions): (String, [Int])
        if let logregPredictions {
            (source, predictions) = ("logreg", logregPredictions)
        } else {
            let p = knnPredictions!
            let j = p.ks.firstIndex(of: 20) ?? 0
            (source, predictions) = ("knn k=\(p.ks[j])", p.predictions[j])
        }
        let confusion = try ConfusionMatrix(classes: data.classes, actual: data.testLabels, predicted: predictions)
        let result = ProbeResult(logreg: logregResult, knn: knnResult, classes: data.classes, confusion: confusion.counts,
                                 precision: data.precision?.rawValue)
        return Outcome(result: result, classes: data.classes, trainLabels: data.trainLabels, testLabels: data.testLabels,
                       logreg: logregModel, logregTestPredictions: logregPredictions, knn: knnPredictions,
                       confusionSource: source, confusion: confusion, predictions: predictions,
                       testImages: data.testImages, featureDimension: data.train.columns)
    }

    // MARK: - Data

    struct Data {
        var classes: [String]
        var train: FeatureMatrix
        var trainLabels: [Int]
        var test: FeatureMatrix
        var testLabels: [Int]
        var testImages: (any LabeledImages)?
        /// The model's precision, when a model extracted the features.
        var precision: Precision? = nil
    }

    func loadData() throws -> Data {
        switch source {
        case let .features(trainPath, trainLabelsPath, testPath, testLabelsPath):
            let train = try FeatureMatrix.load(npy: trainPath), test = try FeatureMatrix.load(npy: testPath)
            let trainLabels = try LabelFile.load(npy: trainLabelsPath), testLabels = try LabelFile.load(npy: testLabelsPath)
            guard trainLabels.count == train.rows else {
                throw EvaluationError.badFeatures(what: trainLabelsPath, detail: "\(trainLabels.count) labels for \(train.rows) rows of \(trainPath)")
            }
            guard testLabels.count == test.rows else {
                throw EvaluationError.badFeatures(what: testLabelsPath, detail: "\(testLabels.count) labels for \(test.rows) rows of \(testPath)")
            }
            guard train.columns == test.columns else {
                throw EvaluationError.badFeatures(what: testPath, detail: "width \(test.columns), but \(trainPath) has width \(train.columns)")
            }
            // Classes: the distinct label values of both sets, sorted; labels become indices.
            let values = Array(Set(trainLabels + testLabels)).sorted()
            let index = Dictionary(uniqueKeysWithValues: values.enumerated().map { ($1, $0) })
            return Data(classes: values.map(String.init), train: train, trainLabels: trainLabels.map { index[$0]! },
                        test: test, testLabels: testLabels.map { index[$0]! }, testImages: nil)
        case let .cifar10(directory):
            let cifar = try CIFAR10(directory: directory)
            return try extract(train: cifar.train, test: cifar.test, classes: cifar.classes)
        case let .imageFolders(trainRoot, testRoot):
            let train = try ImageFolder(root: trainRoot), test = try ImageFolder(root: testRoot)
            let missing = test.classes.filter { !train.classes.contains($0) }
            guard missing.isEmpty else {
                throw EvaluationError.badDataset(path: testRoot, detail: "classes \(missing.prefix(5)) have no folder under \(trainRoot); test classes must be training classes")
            }
            // Test labels follow the training folder's class order.
            let remapped = RelabeledImages(base: test, classes: train.classes,
                                           labels: test.labels.map { train.classes.firstIndex(of: test.classes[$0])! })
            return try extract(train: train, test: remapped, classes: train.classes)
        }
    }

    private func extract(train: any LabeledImages, test: any LabeledImages, classes: [String]) throws -> Data {
        guard let weights else {
            throw EvaluationError.invalidArgument(what: "--weights", detail: "image datasets need a model: pass --weights (or give --train-features ... instead)")
        }
        let model = try Model(store: loadWeights(path: weights), numHeads: numHeads, precision: precision,
                              parallelism: parallelism, loading: loading)
        let preprocess = self.preprocess ?? ProbeExperiment.defaultPreprocess(for: source)
        let extractor = FeatureExtractor(model: model, preprocess: preprocess, batchSize: batchSize,
                                         decodeThreads: parallelism.threads)
        let cache = try cacheDirectory.map { try FeatureCache(directory: $0) }
        let weightsDigest = try cache.map { _ in try FeatureCache.weightsDigest(path: weights) }

        func features(_ images: any LabeledImages, split: String) throws -> FeatureMatrix {
            let run = {
                let bar = ProgressBar(label: "extract \(split)", total: images.count, enabled: self.showProgress)
                defer { bar.finish() }
                return try extractor.extract(images) { bar.update($0) }
            }
            guard let cache, let weightsDigest else { return try run() }
            let key = FeatureCacheKey(weightsSHA256: weightsDigest, model: model.config.description,
                                      precision: model.precision.rawValue, preprocessing: preprocess.summary,
                                      datasetFingerprint: try images.fingerprint(), split: split, count: images.count)
            let (matrix, reused, reason) = try cache.features(for: key, labels: images.labels, weightsPath: weights,
                                                              dataset: images.source, extract: run)
            let file = cache.paths(for: key).features
            log(reused ? "\(split): reusing cached features \(file)" : "\(split): extracted features (\(reason ?? "")), cached in \(file)")
            return matrix
        }

        let trainFeatures = try features(train, split: "train")
        let testFeatures = try features(test, split: "test")
        return Data(classes: classes, train: trainFeatures, trainLabels: train.labels, test: testFeatures,
                    testLabels: test.labels, testImages: test, precision: model.precision)
    }
}

/// Another dataset's images under a different class list (ImageFolder test trees mapped onto
/// the training tree's classes).
struct RelabeledImages: LabeledImages {
    let base: any LabeledImages
    let classes: [String]
    let labels: [Int]
    var source: String { base.source }
    func image(at index: Int) throws -> RGBImage { try base.image(at: index) }
    func fingerprint() throws -> String { try base.fingerprint() }
}
