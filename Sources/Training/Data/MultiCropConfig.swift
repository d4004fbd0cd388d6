/// The multi-crop augmentation of `DataAugmentationDINO` (dinov2/data/augmentations.py; spec
/// §4.6) as settings. The defaults are the official recipe with two deliberate readings:
///
/// - `localCropsSize` is 98, not the yaml's 96: crops must be a multiple of the patch size (14)
///   here, and 98 is what DINOv2's ViT-*/14 training configs use in practice.
/// - The blur probabilities are the ones the official code *applies*: its `GaussianBlur(p)` hands
///   `1 - p` to `RandomApply`, so "p=1.0 / 0.1 / 0.5" become 0.0 / 0.9 / 0.5 (dinov2 PR #411).
///   Measured on the official transforms by Scripts/fixtures/ssl_augment.py.
///
/// Written as JSON into a run folder, so a run records exactly what it drew from.
public struct MultiCropConfig: Codable, Sendable, Equatable {
    public var globalCropsSize: Int = 224
    public var globalCropsScale: [Double] = [0.32, 1.0]
    public var localCropsNumber: Int = 8
    public var localCropsSize: Int = 98
    public var localCropsScale: [Double] = [0.05, 0.32]
    /// RandomResizedCrop's aspect-ratio range (torchvision default 3/4 ... 4/3).
    public var cropRatio: [Double] = [3.0 / 4.0, 4.0 / 3.0]
    public var flipProbability: Double = 0.5
    /// `RandomApply([ColorJitter(...)], p)`.
    public var colorJitterProbability: Double = 0.8
    public var brightness: Double = 0.4
    public var contrast: Double = 0.4
    public var saturation: Double = 0.2
    public var hue: Double = 0.1
    public var grayscaleProbability: Double = 0.2
    /// Effective blur probabilities (see the type's comment).
    public var blurProbabilityGlobal1: Double = 0.0
    public var blurProbabilityGlobal2: Double = 0.9
    public var blurProbabilityLocal: Double = 0.5
    public var blurSigma: [Double] = [0.1, 2.0]
    public var blurKernelSize: Int = 9
    /// `RandomSolarize(threshold, p)`, global crop 2 only.
    public var solarizeProbability: Double = 0.2
    public var solarizeThreshold: Int = 128
    public var mean: [Double] = [0.485, 0.456, 0.406]
    public var std: [Double] = [0.229, 0.224, 0.225]

    public init() {}

    /// Refuses settings the transforms cannot run with.
    public func validate() throws {
        func fail(_ what: String, _ detail: String) -> SSLDataError { .config(what: "multi-crop \(what)", detail: detail) }
        guard globalCropsSize >= 1 else { throw fail("globalCropsSize", "must be positive, got \(globalCropsSize)") }
        guard localCropsNumber >= 0 else { throw fail("localCropsNumber", "must be 0 or more, got \(localCropsNumber)") }
        guard localCropsNumber == 0 || localCropsSize >= 1 else { throw fail("localCropsSize", "must be positive, got \(localCropsSize)") }
        for (name, range) in [("globalCropsScale", globalCropsScale), ("localCropsScale", localCropsScale)] {
            guard range.count == 2, range[0] > 0, range[0] <= range[1], range[1] <= 1 else {
                throw fail(name, "needs [min, max] with 0 < min <= max <= 1, got \(range)")
            }
        }
        guard cropRatio.count == 2, cropRatio[0] > 0, cropRatio[0] <= cropRatio[1], cropRatio[1].isFinite else {
            throw fail("cropRatio", "needs [min, max] with 0 < min <= max, got \(cropRatio)")
        }
        let probabilities = [("flipProbability", flipProbability), ("colorJitterProbability", colorJitterProbability),
                             ("grayscaleProbability", grayscaleProbability), ("blurProbabilityGlobal1", blurProbabilityGlobal1),
                             ("blurProbabilityGlobal2", blurProbabilityGlobal2), ("blurProbabilityLocal", blurProbabilityLocal),
                             ("solarizeProbability", solarizeProbability)]
        for (name, p) in probabilities where !(p >= 0 && p <= 1) { throw fail(name, "must be in [0, 1], got \(p)") }
        guard brightness >= 0, contrast >= 0, saturation >= 0, brightness.isFinite, contrast.isFinite, saturation.isFinite else {
            throw fail("colour jitter", "brightness, contrast and saturation must be finite and non-negative")
        }
        guard hue >= 0, hue <= 0.5 else { throw fail("hue", "must be in [0, 0.5], got \(hue)") }
        guard blurSigma.count == 2, blurSigma[0] > 0, blurSigma[0] <= blurSigma[1], blurSigma[1].isFinite else {
            throw fail("blurSigma", "needs [min, max] with 0 < min <= max, got \(blurSigma)")
        }
        guard blurKernelSize >= 1, blurKernelSize % 2 == 1, blurKernelSize <= 63 else {
            throw fail("blurKernelSize", "must be odd and in 1...63, got \(blurKernelSize)")
        }
        guard (0...256).contains(solarizeThreshold) else { throw fail("solarizeThreshold", "must be in 0...256, got \(solarizeThreshold)") }
        guard mean.count == 3, std.count == 3, std.allSatisfy({ $0 != 0 && $0.isFinite }), mean.allSatisfy(\.isFinite) else {
            throw fail("normalisation", "mean and std need 3 finite values each, std non-zero")
        }
    }
}

/// iBOT's masking of the global crops (`ibot.mask_ratio_min_max`, `ibot.mask_sample_probability`;
/// MaskingGenerator's arguments as train.py sets them; spec §4.7).
public struct MaskConfig: Codable, Sendable, Equatable {
    public var ratioMin: Double = 0.1
    public var ratioMax: Double = 0.5
    public var sampleProbability: Double = 0.5
    public var minNumPatches: Int = 4
    public var minAspect: Double = 0.3
    /// nil: 1 / minAspect, as MaskingGenerator.
    public var maxAspect: Double? = nil

    public init() {}

    public func validate() throws {
        func fail(_ what: String, _ detail: String) -> SSLDataError { .config(what: "mask \(what)", detail: detail) }
        guard ratioMin >= 0, ratioMin <= ratioMax, ratioMax <= 1 else {
            throw fail("ratio", "needs 0 <= ratioMin <= ratioMax <= 1, got \(ratioMin) ... \(ratioMax)")
        }
        guard sampleProbability >= 0, sampleProbability <= 1 else { throw fail("sampleProbability", "must be in [0, 1], got \(sampleProbability)") }
        guard minNumPatches >= 0 else { throw fail("minNumPatches", "must be 0 or more, got \(minNumPatches)") }
        guard minAspect > 0, minAspect.isFinite, (maxAspect ?? 1) > 0, (maxAspect ?? 1).isFinite else {
            throw fail("aspect", "minAspect and maxAspect must be positive and finite")
        }
    }
}
