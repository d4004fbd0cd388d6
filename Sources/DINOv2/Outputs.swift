import TensorStore

/// `forward_features`'s dict (spec §1.8), as tensors in C order.
public struct FeatureOutputs: Sendable {
    /// `x_norm_clstoken`, (B, D).
    public var clsToken: Tensor
    /// `x_norm_regtokens`, (B, R, D); R = 0 for models without registers.
    public var regTokens: Tensor
    /// `x_norm_patchtokens`, (B, h·w, D), patches in row-major grid order.
    public var patchTokens: Tensor
    /// `x_prenorm`, (B, 1 + R + h·w, D): the residual stream after the last block, before `norm`.
    public var prenorm: Tensor
}

/// Which blocks `intermediateLayers` returns, as `get_intermediate_layers`'s `n`: a count takes
/// the last n blocks, a list takes those 0-based block indices. Either way outputs come in
/// increasing block order. Write `n: 4` or `n: [2, 5, 8, 11]`.
public enum LayerSelection: Sendable, Equatable, ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral {
    case last(Int)
    case indices([Int])

    public init(integerLiteral value: Int) { self = .last(value) }
    public init(arrayLiteral elements: Int...) { self = .indices(elements) }

    /// The selected block indices in increasing order, validated as the official code's
    /// `assert len(output) == len(blocks_to_take)` would: every index must name a block, once.
    public func blockIndices(depth: Int) throws -> [Int] {
        switch self {
        case let .last(n):
            guard n >= 0, n <= depth else {
                throw DINOv2Error.layerSelection("n = \(n) but the model has \(depth) blocks")
            }
            return Array((depth - n)..<depth)
        case let .indices(list):
            for i in list where i < 0 || i >= depth {
                throw DINOv2Error.layerSelection("block index \(i) is outside 0..<\(depth)")
            }
            let unique = Set(list)
            guard unique.count == list.count else {
                throw DINOv2Error.layerSelection("block indices \(list) contain duplicates")
            }
            return unique.sorted()
        }
    }
}

/// One entry of `get_intermediate_layers`: patch tokens ((B, h·w, D), or (B, D, h, w) with
/// `reshape`) and, with `returnClassToken`, the class token (B, D).
public struct IntermediateOutput: Sendable {
    /// The block the output was taken after.
    public var blockIndex: Int
    public var patchTokens: Tensor
    public var classToken: Tensor?
}
