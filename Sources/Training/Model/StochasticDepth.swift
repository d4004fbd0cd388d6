import TensorStore

/// Which images a residual branch runs on in one training forward, and the factor its output is
/// added with (stochastic depth, block.py; spec §1.10). Identity — every image, factor 1 — is the
/// evaluation path and the debug states' (drop path 0).
public final class BranchSubset {
    /// Batch indices of the images the branch runs on, in the order their rows are gathered.
    public let images: UnsafeMutablePointer<Int>
    /// One factor per entry of `images`.
    public let scales: UnsafeMutablePointer<Float>
    public internal(set) var count: Int
    public internal(set) var isIdentity: Bool

    init(capacity: Int) {
        images = .allocate(capacity: Swift.max(capacity, 1))
        scales = .allocate(capacity: Swift.max(capacity, 1))
        images.initialize(repeating: 0, count: Swift.max(capacity, 1))
        scales.initialize(repeating: 1, count: Swift.max(capacity, 1))
        count = capacity
        isIdentity = true
    }

    deinit {
        images.deallocate()
        scales.deallocate()
    }

    func setIdentity(batch: Int) {
        for i in 0..<batch {
            images[i] = i
            scales[i] = 1
        }
        count = batch
        isIdentity = true
    }
}

/// Stochastic depth as DINOv2 trains with it (`drop_path_rate`, `drop_path_uniform`; block.py):
/// per-block rate r (constant, or linspace(0, rate, depth));
/// - r > 0.1: each branch runs on a random subset of S = max(int(B·(1 − r)), 1) images
///   (randperm) and is added to those with factor B/S (`drop_add_residual_stochastic_depth`);
/// - 0 < r ≤ 0.1: the branch runs on every image and is kept per image with probability 1 − r,
///   scaled by 1/(1 − r) (`drop_path`);
/// - r = 0: no drop.
/// The random draws come from DinoKit's seeded generator (PyTorch's cannot be reproduced).
public struct StochasticDepth {
    public var rate: Double
    public var uniform: Bool
    public var generator: SyntheticInput

    public init(rate: Double, uniform: Bool = true, seed: UInt32 = 0) {
        self.rate = rate
        self.uniform = uniform
        generator = SyntheticInput(seed: seed)
    }

    /// Block i's rate.
    public func rate(block i: Int, depth: Int) -> Double {
        if uniform { return rate }
        return depth <= 1 ? 0 : rate * Double(i) / Double(depth - 1)
    }

    /// A uniform draw in [0, 1).
    mutating func uniformDraw() -> Double { Double(generator.nextState() >> 8) / Double(1 << 24) }

    /// Fills `subset` for a branch over `batch` images at rate `r`.
    mutating func draw(_ subset: BranchSubset, batch: Int, rate r: Double) {
        if r <= 0 {
            subset.setIdentity(batch: batch)
            return
        }
        subset.isIdentity = false
        if r > 0.1 {
            let s = Swift.max(Int(Double(batch) * (1 - r)), 1)
            // Partial Fisher-Yates: the first s entries of a random permutation.
            for i in 0..<batch { subset.images[i] = i }
            for i in 0..<s {
                let j = i + Int(uniformDraw() * Double(batch - i))
                let k = Swift.min(j, batch - 1)
                (subset.images[i], subset.images[k]) = (subset.images[k], subset.images[i])
            }
            let scale = Float(Double(batch) / Double(s))
            for i in 0..<s { subset.scales[i] = scale }
            subset.count = s
        } else {
            let keep = 1 - r
            for i in 0..<batch {
                subset.images[i] = i
                subset.scales[i] = uniformDraw() < keep ? Float(1 / keep) : 0
            }
            subset.count = batch
        }
    }
}
