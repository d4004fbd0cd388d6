import Datasets
import DINOv2
import Images
import Kernels
import TensorStore

/// k-NN accuracy of the teacher backbone (as DINOv2 evaluates) on a labelled folder, split once
/// into a reference and a query part per class with the run's seed: top-1 with k = 20
/// (temperature 0.07, DINOv2's weighted vote), features from the eval preprocessing.
/// Images that do not decode are skipped and listed in `skipped` (as `--data` and
/// `train finetune` skip theirs), so one broken file cannot stop a run at its first epoch end.
public final class KNNMonitor {
    public let reference: LabeledSubset
    public let queries: LabeledSubset
    /// Files of the folder that did not decode, with the decoder's reason.
    public let skipped: [SkippedImage]
    public let k: Int
    public var preprocess: Preprocess
    public var parallelism: Parallelism

    /// `queryFraction` of each class (at least one image when the class has two) is held out.
    public init(folder: String, seed: UInt64, queryFraction: Double = 0.3, k: Int = 20,
                preprocess: Preprocess = .eval(resize: 256, crop: 224), parallelism: Parallelism = .fromEnvironment) throws {
        let images = try ImageFolder(root: folder)
        let (readable, skipped) = images.scanReadable(threads: parallelism.threads)
        var byClass = [[Int]](repeating: [], count: images.classes.count)
        for i in readable { byClass[images.labels[i]].append(i) }
        var ref: [Int] = [], query: [Int] = []
        for (c, members) in byClass.enumerated() {
            var g = RunRandom(seed: seed, 0x4B4E_4E, UInt64(c))
            let shuffled = members.shuffled(using: &g)
            let held = members.count >= 2 ? Swift.max(1, Int((Double(members.count) * queryFraction).rounded())) : 0
            query += shuffled.prefix(held)
            ref += shuffled.dropFirst(held)
        }
        guard !ref.isEmpty, !query.isEmpty else {
            throw SSLRunError.config(file: folder, message: "k-NN needs at least two readable images in some class of the labelled folder"
                                     + (skipped.isEmpty ? "" : " (\(skipped.count) skipped, e.g. \(skipped[0].path): \(skipped[0].reason))"))
        }
        self.skipped = skipped
        reference = LabeledSubset(base: images, indices: ref.sorted())
        queries = LabeledSubset(base: images, indices: query.sorted())
        self.k = k
        self.preprocess = preprocess
        self.parallelism = parallelism
    }

    /// Top-1 accuracy (0…1) of the teacher backbone of `model`.
    public func accuracy(of model: SSLModel) throws -> Double {
        var hub = TensorStore()
        try model.teacher.backbone.export(into: &hub, prefix: "")
        return try accuracy(hubStore: hub, config: model.config.backbone)
    }

    public func accuracy(hubStore: TensorStore, config: Config) throws -> Double {
        let net = try Model(hubStore: hubStore, config: config, parallelism: parallelism)
        let extractor = FeatureExtractor(model: net, preprocess: preprocess, batchSize: 32)
        let train = try extractor.extract(reference)
        let test = try extractor.extract(queries)
        let knn = KNN(ks: [Swift.min(k, reference.count)])
        let p = try knn.predict(train: train, labels: reference.labels, queries: test, parallelism: parallelism)
        return p.accuracies(labels: queries.labels).first ?? 0
    }
}

/// Some images of a labelled set, in the given order.
public struct LabeledSubset: LabeledImages {
    public let base: any LabeledImages
    public let indices: [Int]
    public let labels: [Int]

    public init(base: any LabeledImages, indices: [Int]) {
        self.base = base
        self.indices = indices
        let all = base.labels
        labels = indices.map { all[$0] }
    }

    public var classes: [String] { base.classes }
    public var source: String { base.source + " (\(indices.count) of \(base.labels.count))" }
    public func image(at index: Int) throws -> RGBImage { try base.image(at: indices[index]) }
    public func fingerprint() throws -> String { try base.fingerprint() + ":" + indices.map(String.init).joined(separator: ",") }
}
