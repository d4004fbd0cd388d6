import Datasets
import DINOv2
import Images
import Kernels
import TensorStore

/// What the head sees of an image (DINOv2 eval/linear.py `create_linear_input` with
/// `use_n_blocks = 1`): the normed class token, or it concatenated with the mean of the normed
/// patch tokens (`use_avgpool`; register tokens are not patches and are left out).
public enum FinetuneFeatureKind: String, Sendable, Codable, CaseIterable {
    case cls
    case clsAvgpool = "cls+avgpool"

    public func width(embedDim d: Int) -> Int { self == .cls ? d : 2 * d }

    /// Features of `batch` images from x_norm (batch·tokens, D) rows: cls at row b·tokens,
    /// patches at rows b·tokens + 1 + registers ..< (b + 1)·tokens.
    func gather(normOut: UnsafePointer<Float>, batch: Int, tokens: Int, registers: Int, dim d: Int,
                into out: UnsafeMutablePointer<Float>) {
        let f = width(embedDim: d), first = 1 + registers, p = tokens - first
        for b in 0..<batch {
            let rows = normOut + b * tokens * d, dst = out + b * f
            dst.update(from: rows, count: d)
            guard self == .clsAvgpool else { continue }
            for e in 0..<d {
                var s: Float = 0
                for t in first..<tokens { s += rows[t * d + e] }
                dst[d + e] = s / Float(p)
            }
        }
    }

    /// Backward of `gather`: dL/dx_norm (zeros elsewhere) from dL/dfeatures.
    func scatter(dfeatures: UnsafePointer<Float>, batch: Int, tokens: Int, registers: Int, dim d: Int,
                 into dnorm: UnsafeMutablePointer<Float>) {
        let f = width(embedDim: d), first = 1 + registers, p = tokens - first
        dnorm.update(repeating: 0, count: batch * tokens * d)
        for b in 0..<batch {
            let rows = dnorm + b * tokens * d, src = dfeatures + b * f
            rows.update(from: src, count: d)
            guard self == .clsAvgpool else { continue }
            let scale = 1 / Float(p)
            for t in first..<tokens {
                for e in 0..<d { rows[t * d + e] = src[d + e] * scale }
            }
        }
    }
}

/// Frozen-backbone features for linear fine-tuning: Evaluation's FeatureExtractor with the
/// linear-eval output the head is trained on (cls, or cls + mean patch token).
public struct FinetuneFeatureExtractor: Sendable {
    public var model: Model
    public var preprocess: Preprocess
    public var kind: FinetuneFeatureKind
    public var batchSize: Int

    public init(model: Model, preprocess: Preprocess, kind: FinetuneFeatureKind, batchSize: Int) {
        self.model = model
        self.preprocess = preprocess
        self.kind = kind
        self.batchSize = Swift.max(1, batchSize)
    }

    public var width: Int { kind.width(embedDim: model.config.embedDim) }

    /// (images.count, width) row-major; `progress` gets the number done after each batch.
    public func extract(_ images: any LabeledImages, progress: ((Int) -> Void)? = nil) throws -> [Float] {
        let extractor = FeatureExtractor(model: model, preprocess: preprocess, batchSize: batchSize,
                                         output: kind == .cls ? .cls : .clsAvgpool)
        return try extractor.extract(images, progress: progress).values
    }
}
