import Foundation

/// The two draws MaskingGenerator makes, as Python's `random.uniform(a, b)` and
/// `random.randint(a, b)` (both ends included). `RunRandom` is the one runs use; tests replay a
/// stream shared with the official code through it.
public protocol MaskDrawing {
    /// `random.random()`: uniform in [0, 1).
    mutating func uniform() -> Double
    mutating func uniform(_ lower: Double, _ upper: Double) -> Double
    mutating func integer(_ lower: Int, _ upper: Int) -> Int
}

extension RunRandom: MaskDrawing {}

/// iBOT's block-wise mask generator, `dinov2/data/masking.py` `MaskingGenerator`, step for step:
/// rectangles of a random area (`U(minNumPatches, cap)`) and log-uniform aspect ratio, rounded
/// half-to-even, placed uniformly, accepted when they add between 1 and `cap` new patches; ten
/// tries per rectangle, and the mask is done when a round of tries adds nothing or the target is
/// reached. Only the random source differs from the official (`RunRandom` for Python's `random`).
public struct MaskingGenerator: Sendable, Equatable {
    public let height: Int
    public let width: Int
    public let minNumPatches: Int
    /// A float in the official code (train.py passes `0.5 * G // p * G // p`).
    public let maxNumPatches: Double
    public let logAspectRatio: (Double, Double)

    public init(height: Int, width: Int, minNumPatches: Int = 4, maxNumPatches: Double, minAspect: Double = 0.3, maxAspect: Double? = nil) {
        self.height = height
        self.width = width
        self.minNumPatches = minNumPatches
        self.maxNumPatches = maxNumPatches
        // `max_aspect or 1 / min_aspect`.
        var maxA = 1 / minAspect
        if let m = maxAspect, m != 0 { maxA = m }
        logAspectRatio = (Foundation.log(minAspect), Foundation.log(maxA))
    }

    /// The generator train.py builds for global crops of `globalSize` and patches of `patchSize`:
    /// a (G/p) x (G/p) grid and `max_num_patches = 0.5 * G // p * G // p`, evaluated left to right
    /// in floats as Python does (128 for 224 / 14).
    public init(globalSize: Int, patchSize: Int, config: MaskConfig = MaskConfig()) {
        let g = Double(globalSize), p = Double(patchSize)
        let cap = ((((0.5 * g) / p).rounded(.down) * g) / p).rounded(.down)
        self.init(height: globalSize / patchSize, width: globalSize / patchSize, minNumPatches: config.minNumPatches,
                  maxNumPatches: cap, minAspect: config.minAspect, maxAspect: config.maxAspect)
    }

    public static func == (a: MaskingGenerator, b: MaskingGenerator) -> Bool {
        a.height == b.height && a.width == b.width && a.minNumPatches == b.minNumPatches && a.maxNumPatches == b.maxNumPatches
            && a.logAspectRatio == b.logAspectRatio
    }

    public var numPatches: Int { height * width }

    /// `__call__(num_masking_patches)`: a (height · width) row-major mask, true = masked.
    public func generate<R: MaskDrawing>(_ target: Int, rng: inout R) -> [Bool] {
        var mask = [Bool](repeating: false, count: height * width)
        var count = 0
        while count < target {
            let cap = min(Double(target - count), maxNumPatches)
            let delta = addBlock(&mask, cap: cap, rng: &rng)
            if delta == 0 { break }
            count += delta
        }
        return mask
    }

    /// `_mask(mask, max_mask_patches)`: the number of patches newly masked.
    func addBlock<R: MaskDrawing>(_ mask: inout [Bool], cap: Double, rng: inout R) -> Int {
        var delta = 0
        for _ in 0..<10 {
            let targetArea = rng.uniform(Double(minNumPatches), cap)
            let aspect = Foundation.exp(rng.uniform(logAspectRatio.0, logAspectRatio.1))
            let h = Int((targetArea * aspect).squareRoot().rounded(.toNearestOrEven))
            let w = Int((targetArea / aspect).squareRoot().rounded(.toNearestOrEven))
            if w < width, h < height {
                let top = rng.integer(0, height - h)
                let left = rng.integer(0, width - w)
                var already = 0
                for i in top..<(top + h) { for j in left..<(left + w) where mask[i * width + j] { already += 1 } }
                let new = h * w - already
                if new > 0, Double(new) <= cap {
                    for i in top..<(top + h) {
                        for j in left..<(left + w) where !mask[i * width + j] {
                            mask[i * width + j] = true
                            delta += 1
                        }
                    }
                }
                if delta > 0 { break }
            }
        }
        return delta
    }
}

/// The mask half of `collate_data_and_cast` (dinov2/data/collate.py) for `crops` global crops
/// (2B): `int(2B · probability)` masks with targets `int(N · U(probs[i], probs[i+1]))` over
/// `probs = linspace(ratioMin, ratioMax, n + 1)` (float32, as the torch tensors it computes with),
/// empty masks for the rest, then the list shuffled (`random.shuffle`'s Fisher–Yates). Row r of
/// the result is the mask of global-crop row r.
public enum MaskCollate {
    public struct Result: Sendable, Equatable {
        /// (crops, N) row-major, true = masked.
        public var masks: [Bool]
        /// The masking targets in draw order (before the shuffle), for checks.
        public var targets: [Int]
        /// Sum of `int(N · probs[i+1])` (collate's `upperbound`).
        public var upperbound: Int
    }

    public static func masks<R: MaskDrawing>(crops: Int, generator: MaskingGenerator, config: MaskConfig, rng: inout R) -> Result {
        let n = generator.numPatches
        let masked = Int(Double(crops) * config.sampleProbability)
        let probs = linspace(Float(config.ratioMin), Float(config.ratioMax), masked + 1)
        var list: [[Bool]] = []
        var targets: [Int] = []
        var upperbound = 0
        for i in 0..<masked {
            let lo = probs[i], hi = probs[i + 1]
            // random.uniform on 0-d float32 tensors: a + (b - a) * random(), all in float32.
            let u = lo + (hi - lo) * Float(rng.uniform())
            let target = Int(Float(n) * u)
            targets.append(target)
            list.append(generator.generate(target, rng: &rng))
            upperbound += Int(Float(n) * hi)
        }
        for _ in masked..<max(masked, crops) { list.append([Bool](repeating: false, count: n)) }
        if list.count > 1 {
            for i in stride(from: list.count - 1, to: 0, by: -1) { list.swapAt(i, rng.integer(0, i)) }
        }
        return Result(masks: list.flatMap { $0 }, targets: targets, upperbound: upperbound)
    }

    /// torch.linspace in float32 (the first half counted from the start, the rest from the end).
    static func linspace(_ start: Float, _ end: Float, _ steps: Int) -> [Float] {
        guard steps > 1 else { return steps == 1 ? [start] : [] }
        let step = (end - start) / Float(steps - 1)
        let half = steps / 2
        return (0..<steps).map { i in i < half ? start + step * Float(i) : end - step * Float(steps - 1 - i) }
    }
}
