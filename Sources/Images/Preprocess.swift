import Dispatch
import TensorStore

/// A torchvision preprocessing pipeline on PIL images: optional `Resize`, optional `CenterCrop`,
/// then `ToTensor` and `Normalize`. Results are float32 (3, H, W) tensors (or (B, 3, H, W)
/// batches) identical to torchvision's (see Tests/ImagesTests and Fixtures/images/README.md).
///
/// ```
/// let t = try Preprocess.eval.tensor(path: "cat.jpg")          // (3, 224, 224)
/// let b = try Preprocess.resize(224, mean: cifarMean, std: cifarStd).batch(paths: files)
/// ```
public struct Preprocess: Hashable, Sendable {
    public var resizing: ResizeSize?
    public var crop: ImageSize?
    public var interpolation: Interpolation
    public var mean: [Double]
    public var std: [Double]

    public static let imageNetMean: [Double] = [0.485, 0.456, 0.406]
    public static let imageNetStd: [Double] = [0.229, 0.224, 0.225]

    public init(resizing: ResizeSize?, crop: ImageSize?, interpolation: Interpolation = .bicubic,
                mean: [Double] = Preprocess.imageNetMean, std: [Double] = Preprocess.imageNetStd) {
        self.resizing = resizing
        self.crop = crop
        self.interpolation = interpolation
        self.mean = mean
        self.std = std
    }

    /// DINOv2's evaluation transform (dinov2/data/transforms.py `make_classification_eval_transform`):
    /// `Resize(resize, bicubic)` (shorter side) → `CenterCrop(crop)` → `ToTensor` → `Normalize`.
    public static func eval(resize: Int = 256, crop: Int = 224, interpolation: Interpolation = .bicubic,
                            mean: [Double] = imageNetMean, std: [Double] = imageNetStd) -> Preprocess {
        Preprocess(resizing: .shorterSide(resize), crop: ImageSize(height: crop, width: crop),
                   interpolation: interpolation, mean: mean, std: std)
    }

    /// The DINOv2 evaluation preset with its defaults (256 → 224, bicubic, ImageNet statistics).
    public static var eval: Preprocess { eval() }

    /// `Resize((size, size), interpolation)` → `ToTensor` → `Normalize(mean, std)`: the
    /// "resize and normalise with the dataset's statistics" pipeline (e.g. the CIFAR-10 probe).
    public static func resize(_ size: Int = 224, interpolation: Interpolation = .bicubic,
                              mean: [Double] = imageNetMean, std: [Double] = imageNetStd) -> Preprocess {
        Preprocess(resizing: .exact(ImageSize(height: size, width: size)), crop: nil,
                   interpolation: interpolation, mean: mean, std: std)
    }

    /// The output size when it does not depend on the input (a crop, or an exact resize).
    public var fixedOutputSize: ImageSize? {
        if let crop { return crop }
        if case let .exact(size)? = resizing { return size }
        return nil
    }

    /// The output size for an input of `width` x `height`.
    public func outputSize(width: Int, height: Int) throws -> ImageSize {
        if let crop { return crop }
        guard let resizing else { return ImageSize(height: height, width: width) }
        return try Transforms.resizedSize(width: width, height: height, to: resizing)
    }

    /// The geometric steps only (resize, crop): the 8-bit image torchvision's `ToTensor` sees.
    public func geometry(_ image: RGBImage) throws -> RGBImage {
        var out = image
        if let resizing { out = try Transforms.resize(out, to: resizing, interpolation: interpolation) }
        if let crop { out = try Transforms.centerCrop(out, to: crop) }
        return out
    }

    /// The whole pipeline: a (3, H, W) float32 tensor.
    public func tensor(_ image: RGBImage) throws -> Tensor {
        let table = try Transforms.normalizationTable(mean: mean, std: std)
        return Transforms.tensor(try geometry(image), table: table)
    }

    /// Decodes `path` and runs the pipeline.
    public func tensor(path: String) throws -> Tensor {
        try tensor(try ImageDecoder.decode(path: path))
    }

    /// Writes the pipeline's (3, H, W) output for `image` at `out`, which must hold
    /// 3 × H × W floats for `outputSize(width:height:)`. For callers filling their own batch
    /// buffers (e.g. a reader decoding the next batch while the model runs).
    public func write(_ image: RGBImage, table: [Float], into out: UnsafeMutableBufferPointer<Float>) throws {
        try writeNormalized(try geometry(image), table: table, into: out)
    }

    /// `write` for an image `geometry` has already resized and cropped: ToTensor and Normalize only.
    public func writeNormalized(_ processed: RGBImage, table: [Float], into out: UnsafeMutableBufferPointer<Float>) throws {
        guard out.count >= 3 * processed.pixelCount, let base = out.baseAddress else {
            throw ImageError.invalidArgument(what: "output buffer", detail: "\(out.count) floats cannot hold 3x\(processed.height)x\(processed.width)")
        }
        Transforms.write(processed, table: table, into: base)
    }

    /// The normalisation table for this preset (see `Transforms.normalizationTable`).
    public func normalizationTable() throws -> [Float] {
        try Transforms.normalizationTable(mean: mean, std: std)
    }

    /// Stacks already-decoded images into a (B, 3, H, W) float32 tensor. Every image must come
    /// out at the same size (always true with a crop or an exact resize).
    public func batch(images: [RGBImage]) throws -> Tensor {
        let table = try normalizationTable()
        let processed = try images.map { try geometry($0) }
        let size = processed.first.map { ImageSize(height: $0.height, width: $0.width) } ?? fixedOutputSize ?? ImageSize(height: 0, width: 0)
        for (i, p) in processed.enumerated() where p.height != size.height || p.width != size.width {
            throw ImageError.invalidArgument(what: "batch", detail: "image \(i) comes out \(p.height)x\(p.width), image 0 \(size.height)x\(size.width); add a crop or an exact resize")
        }
        let plane = 3 * size.height * size.width
        let storage = Storage(byteCount: processed.count * plane * 4)
        if plane > 0, let base = storage.mutableBytes.bindMemory(to: Float.self).baseAddress {
            for (i, p) in processed.enumerated() { Transforms.write(p, table: table, into: base + i * plane) }
        }
        return try Tensor(storage: storage, dtype: .f32, shape: [processed.count, 3, size.height, size.width])
    }

    /// Decodes and preprocesses `paths` into one (N, 3, H, W) float32 tensor, N = the files that
    /// succeeded, in input order. Files that cannot be decoded are reported in `failures` (typed,
    /// naming the file), not thrown, so a caller can warn and go on — or treat any failure as
    /// fatal (`--strict`). Throws only when the preset has no fixed output size (no crop and no
    /// exact resize) or its parameters are invalid. `threads` > 1 decodes files concurrently.
    public func batch(paths: [String], threads: Int = 1) throws -> PreprocessedBatch {
        guard let size = fixedOutputSize else {
            throw ImageError.invalidArgument(what: "batch preset", detail: "a shorter-side resize without a crop gives each image its own size; add a crop or use an exact resize")
        }
        guard size.height > 0, size.width > 0 else {
            throw ImageError.invalidArgument(what: "batch preset", detail: "output size \(size) must be positive")
        }
        let table = try normalizationTable()
        let plane = 3 * size.height * size.width
        let storage = Storage(byteCount: paths.count * plane * 4)
        let errors = UnsafeMutableBufferPointer<ImageError?>.allocate(capacity: paths.count)
        errors.initialize(repeating: nil)
        defer { errors.deinitialize(); errors.deallocate() }

        if plane > 0, let base = storage.mutableBytes.bindMemory(to: Float.self).baseAddress {
            // Workers write disjoint slots of these buffers (see below), so sharing them is safe.
            let slots = BatchSlots(floats: base, errors: errors)
            let work: @Sendable (Int) -> Void = { i in
                do {
                    let image = try ImageDecoder.decode(path: paths[i])
                    try write(image, table: table, into: UnsafeMutableBufferPointer(start: slots.floats + i * plane, count: plane))
                } catch let error as ImageError {
                    slots.errors[i] = error
                } catch {
                    slots.errors[i] = .corrupt(file: paths[i], detail: "\(error)")
                }
            }
            let workers = max(1, min(threads, paths.count))
            if workers == 1 {
                for i in paths.indices { work(i) }
            } else {
                // Worker w takes images w, w + workers, …: disjoint slots, so no locking.
                DispatchQueue.concurrentPerform(iterations: workers) { w in
                    for i in stride(from: w, to: paths.count, by: workers) { work(i) }
                }
            }
            // Close the gaps left by failures so the tensor holds the successes in order.
            var kept = 0
            for i in paths.indices where errors[i] == nil {
                if kept != i { (base + kept * plane).update(from: base + i * plane, count: plane) }
                kept += 1
            }
        }
        var included: [String] = []
        var failures: [ImageFailure] = []
        for (i, path) in paths.enumerated() {
            if let error = errors[i] { failures.append(ImageFailure(path: path, error: error)) } else { included.append(path) }
        }
        let tensor = try Tensor(storage: storage, dtype: .f32, shape: [included.count, 3, size.height, size.width])
        return PreprocessedBatch(tensor: tensor, paths: included, failures: failures)
    }

    /// `Preprocess.batch(paths:preset:)`: the same as `preset.batch(paths:threads:)`.
    public static func batch(paths: [String], preset: Preprocess, threads: Int = 1) throws -> PreprocessedBatch {
        try preset.batch(paths: paths, threads: threads)
    }
}

/// Output buffers shared by batch workers; each worker touches only its own indices.
private struct BatchSlots: @unchecked Sendable {
    let floats: UnsafeMutablePointer<Float>
    let errors: UnsafeMutableBufferPointer<ImageError?>
}

/// A file a batch skipped, and why.
public struct ImageFailure: Sendable, Equatable, CustomStringConvertible {
    public let path: String
    public let error: ImageError

    public var description: String { error.description }
}

/// The result of `Preprocess.batch(paths:)`: a (N, 3, H, W) float32 tensor of the files that
/// decoded, their paths in the same order, and the files that did not.
public struct PreprocessedBatch: Sendable {
    public let tensor: Tensor
    public let paths: [String]
    public let failures: [ImageFailure]
}
