import DINOv2
import Dispatch
import Evaluation
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

/// Frozen-backbone features for linear fine-tuning: images decoded and preprocessed on several
/// threads, batches through the evaluation model's `forward_features` (Evaluation's
/// FeatureExtractor keeps only the class token, so the patch mean needs this pass).
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
        guard let size = preprocess.fixedOutputSize else {
            throw TrainingError.config(file: "preprocessing", message: "the preprocessing must give a fixed size (add a crop)")
        }
        let table = try preprocess.normalizationTable()
        let plane = 3 * size.height * size.width, n = images.count, f = width
        let d = model.config.embedDim
        var out = [Float](repeating: 0, count: n * f)
        let workspace = Workspace()
        var start = 0
        while start < n {
            let count = Swift.min(batchSize, n - start)
            let pixels = try loadPixels(images, first: start, count: count, plane: plane, table: table)
            let x = try Tensor(shape: [count, 3, size.height, size.width], floats: pixels)
            let o = try model.forwardFeatures(x, workspace: workspace)
            let cls = o.clsToken.floats(), patches = o.patchTokens.floats()
            let p = o.patchTokens.shape[1]
            for b in 0..<count {
                let row = (start + b) * f
                for e in 0..<d { out[row + e] = cls[b * d + e] }
                guard kind == .clsAvgpool else { continue }
                for e in 0..<d {
                    var s: Float = 0
                    for t in 0..<p { s += patches[(b * p + t) * d + e] }
                    out[row + d + e] = s / Float(p)
                }
            }
            start += count
            progress?(start)
        }
        return out
    }

    private func loadPixels(_ images: any LabeledImages, first: Int, count: Int, plane: Int, table: [Float]) throws -> [Float] {
        var pixels = [Float](repeating: 0, count: count * plane)
        var errors = [String?](repeating: nil, count: count)
        let preprocess = self.preprocess
        try pixels.withUnsafeMutableBufferPointer { px in
            try errors.withUnsafeMutableBufferPointer { er in
                let slots = PixelSlots(pixels: px.baseAddress!, errors: er.baseAddress!)
                let workers = Swift.max(1, Swift.min(model.parallelism.threads, count))
                DispatchQueue.concurrentPerform(iterations: workers) { w in
                    for i in stride(from: w, to: count, by: workers) {
                        do {
                            try preprocess.write(try images.image(at: first + i), table: table,
                                                 into: UnsafeMutableBufferPointer(start: slots.pixels + i * plane, count: plane))
                        } catch {
                            slots.errors[i] = String(describing: error)
                        }
                    }
                }
                if let i = er.firstIndex(where: { $0 != nil }) {
                    throw TrainingError.stepInput(file: images.source, message: "image \(first + i): \(er[i]!)")
                }
            }
        }
        return pixels
    }
}

/// Batch buffers shared by decode workers; each touches only its own slots.
struct PixelSlots: @unchecked Sendable {
    let pixels: UnsafeMutablePointer<Float>
    let errors: UnsafeMutablePointer<String?>
}
