import DINOv2
import Dispatch
import Images
import Kernels
import TensorStore

/// Runs a DINOv2 model over a labelled image set: each image is decoded and preprocessed
/// (several at a time), batches go through the backbone, and one row of `output` features per
/// image is kept (by default the normed class token, the official `model(x)`): an (N, F) float32
/// matrix in dataset order.
public struct FeatureExtractor: Sendable {
    public var model: Model
    public var preprocess: Preprocess
    public var batchSize: Int
    /// Threads decoding and preprocessing images (the model uses its own `parallelism`).
    public var decodeThreads: Int
    /// Which features make a row (`cls`, `cls+avgpool`, ... as `dinokit embed` writes them).
    public var output: EmbedOutputKind

    public init(model: Model, preprocess: Preprocess, batchSize: Int = 64, decodeThreads: Int? = nil,
                output: EmbedOutputKind = .cls) {
        self.model = model
        self.preprocess = preprocess
        self.output = output
        self.batchSize = Swift.max(1, batchSize)
        self.decodeThreads = Swift.max(1, decodeThreads ?? model.parallelism.threads)
    }

    /// Features of every image; `progress` gets the number of images done after each batch.
    public func extract(_ images: any LabeledImages, progress: ((Int) -> Void)? = nil) throws -> FeatureMatrix {
        guard let size = preprocess.fixedOutputSize else {
            throw EvaluationError.invalidArgument(what: "preprocessing", detail: "a shorter-side resize without a crop gives each image its own size; add a crop or use an exact resize")
        }
        let table = try preprocess.normalizationTable()
        let plane = 3 * size.height * size.width
        let p = model.config.patchSize
        let n = images.count
        let d = output.rowShape(embedDim: model.config.embedDim, patches: (size.height / p) * (size.width / p)).reduce(1, *)
        var out = [Float]()
        out.reserveCapacity(n * d)
        let workspace = Workspace()
        var start = 0
        while start < n {
            let count = Swift.min(batchSize, n - start)
            let storage = Storage(byteCount: count * plane * 4)
            let floats = storage.mutableBytes.bindMemory(to: Float.self).baseAddress!
            var failures = [Error?](repeating: nil, count: count)
            try failures.withUnsafeMutableBufferPointer { errors in
                let slots = BatchOutput(floats: floats, errors: errors.baseAddress!)
                let first = start, preprocess = self.preprocess
                let work: @Sendable (Int) -> Void = { i in
                    do {
                        let image = try images.image(at: first + i)
                        let processed = try preprocess.geometry(image)
                        guard processed.width == size.width, processed.height == size.height else {
                            throw EvaluationError.invalidArgument(what: "preprocessing", detail: "image \(first + i) came out \(processed.width)x\(processed.height)")
                        }
                        try preprocess.writeNormalized(processed, table: table, into: UnsafeMutableBufferPointer(start: slots.floats + i * plane, count: plane))
                    } catch {
                        slots.errors[i] = error
                    }
                }
                let workers = Swift.min(decodeThreads, count)
                if workers <= 1 {
                    for i in 0..<count { work(i) }
                } else {
                    DispatchQueue.concurrentPerform(iterations: workers) { w in
                        for i in stride(from: w, to: count, by: workers) { work(i) }
                    }
                }
                if let error = errors.compactMap({ $0 }).first { throw error }
            }
            let x = try Tensor(storage: storage, dtype: .f32, shape: [count, 3, size.height, size.width])
            out += try output.features(model, x, workspace: workspace)
            start += count
            progress?(start)
        }
        return try FeatureMatrix(rows: n, columns: d, values: out)
    }
}

/// Batch buffers shared by the decode workers; each touches only its own slots.
private struct BatchOutput: @unchecked Sendable {
    let floats: UnsafeMutablePointer<Float>
    let errors: UnsafeMutablePointer<Error?>
}

extension Preprocess {
    /// A readable, complete description (part of the feature cache key):
    /// `Resize((224, 224), bicubic) -> ToTensor -> Normalize(mean [...], std [...])`.
    public var summary: String {
        var steps: [String] = []
        switch resizing {
        case let .exact(s)?: steps.append("Resize((\(s.height), \(s.width)), \(interpolation.rawValue))")
        case let .shorterSide(n, maxSize)?:
            steps.append("Resize(\(n)\(maxSize.map { ", max_size=\($0)" } ?? ""), \(interpolation.rawValue))")
        case nil: break
        }
        if let crop { steps.append("CenterCrop((\(crop.height), \(crop.width)))") }
        steps.append("ToTensor")
        steps.append("Normalize(mean \(mean), std \(std))")
        return steps.joined(separator: " -> ")
    }
}
