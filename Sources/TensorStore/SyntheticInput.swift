/// Deterministic test inputs shared with the Python reference tooling
/// (Scripts/dinokit_ref/synthetic.py). A 32-bit LCG (Numerical Recipes constants); each value is
/// ((state >> 24) - 128) / 64, exact in float32, in [-2, 2). Golden sets name it instead of
/// committing megabytes of random floats, and tests use it instead of `Float.random`.
public struct SyntheticInput: RandomNumberGenerator {
    public private(set) var state: UInt32

    public init(seed: UInt32) { state = seed }

    public mutating func nextState() -> UInt32 {
        state = state &* 1_664_525 &+ 1_013_904_223
        return state
    }

    /// The next value in [-2, 2).
    public mutating func nextValue() -> Float {
        Float(Int32(nextState() >> 24) - 128) / 64
    }

    /// For `RandomNumberGenerator` conformance (e.g. shuffles in tests).
    public mutating func next() -> UInt64 {
        UInt64(nextState()) << 32 | UInt64(nextState())
    }

    /// `count` values from `seed`.
    public static func values(seed: UInt32, count: Int) -> [Float] {
        var g = SyntheticInput(seed: seed)
        return (0..<count).map { _ in g.nextValue() }
    }

    /// A float32 tensor of `shape` filled from `seed`, in C order.
    public static func tensor(seed: UInt32, shape: Shape) throws -> Tensor {
        try Tensor(shape: shape, floats: values(seed: seed, count: shape.elementCount))
    }
}
