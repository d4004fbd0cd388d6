import Foundation
import Images
import Kernels

/// DINOv2's data pipeline as an `SSLBatchSource`: each epoch a keyed shuffle of the images, each
/// image decoded and put through `DataAugmentationDINO` (`MultiCropAugmenter`), the crops laid
/// out as `collate_data_and_cast` stacks them and the global crops' masks made by
/// `MaskCollate`. Every draw comes from `RunRandom` keyed by the run's seed and its coordinates:
///
/// - the shuffle of epoch e: `(seed, .shuffle, e)`;
/// - the crops of slot i of step s: `(seed, .augment, s, i)` — one generator per image, so the
///   result does not depend on how many threads decode;
/// - the masks of step s: `(seed, .masks, s)`;
/// - a replacement for an image that fails to decode: `(seed, .replacement, s, i)`.
///
/// A batch is therefore a pure function of (seed, step) and the files. An image that fails to
/// decode at batch time is replaced by images drawn from the replacement generator until one
/// decodes (32 tries), and is listed in `decodeFailures`; since decoding a given file always
/// fails or succeeds the same way, the replacement is reproducible too.
public final class MultiCropSource: SSLBatchSource, @unchecked Sendable {
    /// The `RunRandom` key domains (the first key number).
    public enum Stream: UInt64 {
        case shuffle = 1, augment = 2, masks = 3, replacement = 4
    }

    public let images: ImageList
    public let augmenter: MultiCropAugmenter
    public let maskConfig: MaskConfig
    public let maskGenerator: MaskingGenerator
    public let batchSize: Int
    public let seed: UInt64
    public let parallelism: Parallelism

    private let lock = NSLock()
    private var failures: [String: String] = [:]
    private var shuffled: (epoch: Int, order: [Int])?

    public var config: MultiCropConfig { augmenter.config }
    public var imageCount: Int { images.count }
    public var stepsPerEpoch: Int { max(1, images.count / batchSize) }

    public init(images: ImageList, config: MultiCropConfig = MultiCropConfig(), maskConfig: MaskConfig = MaskConfig(),
                patchSize: Int = 14, batchSize: Int, seed: UInt64, parallelism: Parallelism = .serial) throws {
        guard images.count > 0 else { throw SSLDataError.noImages(path: images.root, detail: "the image list is empty") }
        guard batchSize > 0 else { throw SSLDataError.config(what: "batch size", detail: "must be positive, got \(batchSize)") }
        guard patchSize > 0, config.globalCropsSize >= patchSize else {
            throw SSLDataError.config(what: "patch size", detail: "\(patchSize) does not fit global crops of \(config.globalCropsSize)")
        }
        try maskConfig.validate()
        self.images = images
        self.augmenter = try MultiCropAugmenter(config: config)
        self.maskConfig = maskConfig
        self.maskGenerator = MaskingGenerator(globalSize: config.globalCropsSize, patchSize: patchSize, config: maskConfig)
        self.batchSize = batchSize
        self.seed = seed
        self.parallelism = parallelism
    }

    /// Files that failed to decode at batch time so far (sorted by path), with the decoder's reason.
    public var decodeFailures: [ImageList.Problem] {
        lock.lock(); defer { lock.unlock() }
        return failures.keys.sorted().map { ImageList.Problem(path: $0, reason: failures[$0] ?? "") }
    }

    /// The image order of `epoch` (Fisher–Yates from `(seed, .shuffle, epoch)`).
    public func permutation(epoch: Int) -> [Int] {
        lock.lock()
        if let s = shuffled, s.epoch == epoch { lock.unlock(); return s.order }
        lock.unlock()
        var rng = RunRandom(seed: seed, Stream.shuffle.rawValue, UInt64(truncatingIfNeeded: epoch))
        var order = Array(0..<images.count)
        if order.count > 1 {
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, rng.integer(0, i)) }
        }
        lock.lock(); shuffled = (epoch, order); lock.unlock()
        return order
    }

    /// The image indices of `step`'s batch before any decode-failure replacement (a batch larger
    /// than the data set wraps around the epoch's order).
    public func imageIndices(step: Int) -> [Int] {
        let epoch = step / stepsPerEpoch, k = step % stepsPerEpoch
        let order = permutation(epoch: epoch)
        return (0..<batchSize).map { order[(k * batchSize + $0) % order.count] }
    }

    public func batch(step: Int) throws -> SSLBatch {
        guard step >= 0 else { throw SSLDataError.config(what: "step", detail: "must be 0 or more, got \(step)") }
        let c = config, b = batchSize, l = c.localCropsNumber
        let g = c.globalCropsSize, s = c.localCropsSize
        let globalCrop = 3 * g * g, localCrop = 3 * s * s
        let indices = imageIndices(step: step)
        var global = [Float](repeating: 0, count: 2 * b * globalCrop)
        var local = [Float](repeating: 0, count: l * b * localCrop)
        var errors = [Error?](repeating: nil, count: b)
        global.withUnsafeMutableBufferPointer { gp in
            local.withUnsafeMutableBufferPointer { lp in
                errors.withUnsafeMutableBufferPointer { ep in
                    let gBase = gp.baseAddress, lBase = lp.baseAddress, eBase = ep.baseAddress
                    parallelForWorkers(b, parallelism) { range, _ in
                        for slot in range {
                            do {
                                let image = try self.decodeImage(index: indices[slot], step: step, slot: slot)
                                var rng = RunRandom(seed: self.seed, Stream.augment.rawValue, UInt64(step), UInt64(slot))
                                let crops = try self.augmenter.crops(of: image, rng: &rng)
                                for (n, crop) in crops.enumerated() {
                                    // collate stacks crop-major: row c·B + i is crop c of image i.
                                    if n < 2, let base = gBase {
                                        self.augmenter.normalize(crop.pixels, into: base + (n * b + slot) * globalCrop)
                                    } else if n >= 2, let base = lBase {
                                        self.augmenter.normalize(crop.pixels, into: base + ((n - 2) * b + slot) * localCrop)
                                    }
                                }
                            } catch {
                                eBase?[slot] = error
                            }
                        }
                    }
                }
            }
        }
        if let error = errors.compactMap({ $0 }).first { throw error }
        var maskRNG = RunRandom(seed: seed, Stream.masks.rawValue, UInt64(step))
        let masks = MaskCollate.masks(crops: 2 * b, generator: maskGenerator, config: maskConfig, rng: &maskRNG)
        return SSLBatch(batchSize: b, globalCrops: global, globalSize: g, localCrops: local, localCount: l,
                        localSize: s, masks: masks.masks)
    }

    /// Decodes image `index`, or — when it fails — replacements drawn from `(seed, .replacement, step, slot)`.
    func decodeImage(index: Int, step: Int, slot: Int) throws -> RGBImage {
        if let image = tryDecode(index) { return image }
        var rng = RunRandom(seed: seed, Stream.replacement.rawValue, UInt64(step), UInt64(slot))
        for _ in 0..<32 {
            if let image = tryDecode(rng.integer(0, images.count - 1)) { return image }
        }
        throw SSLDataError.unreadableBatch(step: step, slot: slot, detail: "\(images.paths[index]) and 32 replacements failed to decode")
    }

    private func tryDecode(_ index: Int) -> RGBImage? {
        let path = images.paths[index]
        lock.lock()
        let known = failures[path] != nil
        lock.unlock()
        if known { return nil }
        do {
            return try ImageDecoder.decode(path: path)
        } catch {
            lock.lock(); failures[path] = "\(error)"; lock.unlock()
            return nil
        }
    }
}
