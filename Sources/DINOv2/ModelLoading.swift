import TensorStore

extension Model {
    /// How a model holds its weights.
    public enum Loading: Sendable, Equatable, CustomStringConvertible {
        /// Every block bound at load, its linear weights packed for the GEMM: the fastest
        /// forwards, for as long as the model lives about the Float32 size of the weights in
        /// memory (`inMemoryWeightBytes`; at bf16 the linear weights take half of theirs).
        case inMemory
        /// Only the tokens, the patch embedding and the final norms are kept. Each forward embeds
        /// the whole batch, then binds and packs one block from the store, runs every image
        /// through it and releases it before the next: about one block's weights in memory,
        /// for weights larger than the machine. The store stays mapped, its pages given back
        /// after each block is bound. Outputs are bit-identical to `.inMemory`;
        /// each forward reads the weights once more, so this pays off for large batches.
        case streamed
        /// `.streamed` when `.inMemory` would hold more than `maxWeightBytes`, else `.inMemory`.
        case automatic(maxWeightBytes: Int)

        /// The mode a store of `inMemoryBytes` (`inMemoryWeightBytes`) loads in.
        func resolved(inMemoryBytes: Int) -> Loading {
            guard case let .automatic(limit) = self else { return self }
            return inMemoryBytes > limit ? .streamed : .inMemory
        }

        public var description: String {
            switch self {
            case .inMemory: return "in memory"
            case .streamed: return "streamed"
            case let .automatic(limit): return "automatic (streamed above \(limit) bytes)"
            }
        }
    }

    /// How the weights are held: `.inMemory` or `.streamed` (an `.automatic` load resolved).
    public var loading: Loading { streamer == nil ? .inMemory : .streamed }

    /// A streamed model's high-water mark of weight bytes held at once so far: its stem plus one
    /// block, as bound (linear weights packed, the rest Float32; nil for a model in memory).
    public var peakStreamedWeightBytes: Int? { streamer?.peakBytes }

    /// What an in-memory model of these hub-named weights holds at f32: every floating-point
    /// tensor as Float32 (the linear weights only as packed panels, the same size but for the
    /// last panel's padding). At bf16 the linear weights take half of that.
    public static func inMemoryWeightBytes(hubStore: TensorStore) -> Int {
        4 * hubStore.tensors.values.reduce(0) { $0 + ($1.dtype.isFloatingPoint ? $1.elementCount : 0) }
    }
}
