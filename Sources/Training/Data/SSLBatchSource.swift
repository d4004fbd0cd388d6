import Foundation

/// Where a training run's batches come from (`dinokit train ssl`).
///
/// A batch is a pure function of the run's seed and the step number: every random draw for step
/// `s` (the epoch's shuffle, crops, flips, jitter, masks) comes from generators keyed by
/// (seed, s), never from a generator that runs on from step to step. So a resumed run draws
/// exactly the batches the uninterrupted run would, and a checkpoint stores no generator state
/// beyond the seed and the step.
public protocol SSLBatchSource: AnyObject {
    /// Images in one pass over the data.
    var imageCount: Int { get }
    /// Steps per epoch: one pass over the data, the last partial batch dropped (at least 1).
    var stepsPerEpoch: Int { get }
    /// The batch of `step` (0-based over the whole run; epoch = step / stepsPerEpoch).
    func batch(step: Int) throws -> SSLBatch
}

/// A keyed random generator (SplitMix64 over a key mixed from a seed and up to three numbers):
/// `RunRandom(seed: s, 7, step, image)` always gives the same stream, so any draw of a run can be
/// re-made from its coordinates alone.
public struct RunRandom: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64, _ a: UInt64 = 0, _ b: UInt64 = 0, _ c: UInt64 = 0) {
        var s = seed
        for part in [a, b, c] { s = RunRandom.mix(s ^ RunRandom.mix(part &+ 0x9E37_79B9_7F4A_7C15)) }
        state = s
    }

    static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return RunRandom.mix(state)
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Uniform in [lower, upper).
    public mutating func uniform(_ lower: Double, _ upper: Double) -> Double { lower + (upper - lower) * uniform() }

    /// True with probability p.
    public mutating func bernoulli(_ p: Double) -> Bool { uniform() < p }

    /// Standard normal (Box–Muller).
    public mutating func normal() -> Double {
        let u1 = Swift.max(uniform(), 0x1p-60), u2 = uniform()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}
