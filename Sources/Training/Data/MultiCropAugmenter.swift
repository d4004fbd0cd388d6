import Foundation
import Images

/// What the augmentation did to one crop: enough to check the rates and parameters against the
/// official transforms, and to debug a batch.
public struct CropRecord: Sendable, Equatable, Codable {
    public var window: CropWindow
    public var flipped = false
    /// nil when ColorJitter was not applied; else its order (0 brightness, 1 contrast,
    /// 2 saturation, 3 hue) and factors.
    public var jitterOrder: [Int]? = nil
    public var brightness = 1.0, contrast = 1.0, saturation = 1.0, hue = 0.0
    public var grayscale = false
    /// nil when not blurred.
    public var blurSigma: Double? = nil
    public var solarized = false

    public init(window: CropWindow) { self.window = window }
}

/// Which of DataAugmentationDINO's three pipelines a crop goes through.
public enum CropKind: Sendable, Equatable {
    case global1, global2, local
}

/// `DataAugmentationDINO.__call__` on one decoded image: global crop 1, global crop 2, then the
/// local crops, each drawn in the official order (crop window, flip, colour jitter with its
/// random op order, grayscale, blur, and solarize for global crop 2) from one keyed generator.
/// Crops stay 8-bit until `normalize` (ToTensor + Normalize).
public struct MultiCropAugmenter: Sendable {
    public let config: MultiCropConfig
    let table: [Float]

    public init(config: MultiCropConfig) throws {
        try config.validate()
        self.config = config
        table = try Transforms.normalizationTable(mean: config.mean, std: config.std)
    }

    /// All crops of `image` in DataAugmentationDINO's order: 2 global, then `localCropsNumber` local.
    public func crops(of image: RGBImage, rng: inout RunRandom) throws -> [(pixels: CropPixels, record: CropRecord)] {
        var out: [(pixels: CropPixels, record: CropRecord)] = []
        out.append(try crop(image, kind: .global1, rng: &rng))
        out.append(try crop(image, kind: .global2, rng: &rng))
        for _ in 0..<config.localCropsNumber { out.append(try crop(image, kind: .local, rng: &rng)) }
        return out
    }

    /// One crop through the pipeline of `kind`: `plan` then `render`.
    public func crop(_ image: RGBImage, kind: CropKind, rng: inout RunRandom) throws -> (pixels: CropPixels, record: CropRecord) {
        let record = plan(kind: kind, width: image.width, height: image.height, rng: &rng)
        return (try render(image, kind: kind, record: record), record)
    }

    /// Every random draw of one crop, in the official order (crop window, flip, colour jitter
    /// with its op order and factors, grayscale, blur with its sigma, solarize). torchvision's
    /// draws never depend on pixel values, so drawing them all first changes nothing.
    public func plan(kind: CropKind, width: Int, height: Int, rng: inout RunRandom) -> CropRecord {
        let c = config
        let local = kind == .local
        let window = RandomResizedCrop.window(width: width, height: height,
                                              scale: local ? c.localCropsScale : c.globalCropsScale,
                                              ratio: c.cropRatio, rng: &rng)
        var record = CropRecord(window: window)
        record.flipped = rng.torchRand() < Float(c.flipProbability)
        // RandomApply: skipped when p < rand.
        if !(Float(c.colorJitterProbability) < rng.torchRand()) {
            var order = [0, 1, 2, 3]
            for i in stride(from: 3, to: 0, by: -1) { order.swapAt(i, rng.integer(0, i)) }
            record.jitterOrder = order
            record.brightness = rng.torchUniform(max(1 - c.brightness, 0), 1 + c.brightness)
            record.contrast = rng.torchUniform(max(1 - c.contrast, 0), 1 + c.contrast)
            record.saturation = rng.torchUniform(max(1 - c.saturation, 0), 1 + c.saturation)
            record.hue = rng.torchUniform(-c.hue, c.hue)
        }
        record.grayscale = rng.torchRand() < Float(c.grayscaleProbability)
        let blurP = kind == .global1 ? c.blurProbabilityGlobal1 : kind == .global2 ? c.blurProbabilityGlobal2 : c.blurProbabilityLocal
        if blurP > 0, !(Float(blurP) < rng.torchRand()) {
            record.blurSigma = rng.torchUniform(c.blurSigma[0], c.blurSigma[1])
        }
        record.solarized = kind == .global2 && rng.torchRand() < Float(c.solarizeProbability)
        return record
    }

    /// The pixels of a planned crop: torchvision's `resized_crop` on PIL (crop, then PIL's bicubic
    /// resize of the cropped image), then the planned ops.
    public func render(_ image: RGBImage, kind: CropKind, record: CropRecord) throws -> CropPixels {
        let c = config
        let size = kind == .local ? c.localCropsSize : c.globalCropsSize
        let w = record.window
        let region = Transforms.crop(image, top: w.top, left: w.left, size: ImageSize(height: w.height, width: w.width))
        let resized = try PILResample.resize(region, width: size, height: size, filter: .bicubic)
        var px = CropPixels(width: size, height: size, bytes: resized.pixels)
        if record.flipped { PILColorOps.flipHorizontally(&px) }
        if let order = record.jitterOrder {
            for op in order {
                switch op {
                case 0: if c.brightness > 0 { PILColorOps.adjustBrightness(&px, factor: record.brightness) }
                case 1: if c.contrast > 0 { PILColorOps.adjustContrast(&px, factor: record.contrast) }
                case 2: if c.saturation > 0 { PILColorOps.adjustSaturation(&px, factor: record.saturation) }
                default: if c.hue > 0 { PILColorOps.adjustHue(&px, factor: record.hue) }
                }
            }
        }
        if record.grayscale { PILColorOps.grayscale(&px) }
        if let sigma = record.blurSigma { GaussianBlur.apply(&px, size: c.blurKernelSize, sigma: Float(sigma)) }
        if record.solarized { PILColorOps.solarize(&px, threshold: c.solarizeThreshold) }
        return px
    }

    /// ToTensor + Normalize: writes the crop as (3, H, W) float32 at `out`.
    public func normalize(_ px: CropPixels, into out: UnsafeMutablePointer<Float>) {
        let plane = px.width * px.height
        px.bytes.withUnsafeBufferPointer { src in
            table.withUnsafeBufferPointer { t in
                for ch in 0..<3 {
                    let lut = t.baseAddress! + ch * 256
                    let dst = out + ch * plane
                    for p in 0..<plane { dst[p] = lut[Int(src[p * 3 + ch])] }
                }
            }
        }
    }
}
