import Foundation
import Kernels
import TensorStore

/// Where a streamed model's blocks come from (`Model.Loading.streamed`): the hub-named store,
/// from which each block is bound (linear weights packed, the rest converted to Float32, its
/// file pages then given back) when a forward reaches it, and released after. Also counts the
/// weight bytes held at once, the stem's plus the blocks' bound at that moment, and keeps their
/// high-water mark.
final class BlockStreamer: @unchecked Sendable {
    let hubStore: TensorStore
    private let lock = NSLock()
    private var held: Int
    private var peak: Int

    init(hubStore: TensorStore, stemBytes: Int) {
        self.hubStore = hubStore
        held = stemBytes
        peak = stemBytes
    }

    var peakBytes: Int { lock.withLock { peak } }

    /// `body` with a one-block model of block `i` of `stem` (a streamed model): the stem's
    /// parameters shared, the block bound for this call only. Running it through block 0 is
    /// block `i` of the full model: the same code on the same weights, so the same numbers.
    func withBlock<R>(_ i: Int, of stem: Model, _ body: (Model) throws -> R) throws -> R {
        var config = stem.config
        config.depth = 1
        let binder = WeightBinder(store: hubStore, precision: stem.precision)
        let block = try BlockParameters(binder: binder, block: i, config: stem.config)
        let bytes = block.byteCount
        lock.withLock {
            held += bytes
            peak = Swift.max(peak, held)
        }
        defer { lock.withLock { held -= bytes } }
        var parameters = stem.parameters
        parameters.blocks = [block]
        let model = Model(config: config, parameters: parameters, precision: stem.precision, parallelism: stem.parallelism)
        return try body(model)
    }
}

extension Model {
    /// `runBlocks` of a streamed model. This model has no blocks, so its resident `runBlocks`
    /// through block −1 only embeds: the tokens of every pass of images go into the residual
    /// stream first. Then each block is bound once and runs over every pass (`runPass` of a
    /// one-block model) before the next is bound, where a model in memory takes each pass
    /// through every block. Passes are the same images either way, and their rows meet in
    /// nothing but attention within an image, so the order changes no number.
    func runStreamedBlocks(_ x: Tensor, masks: Tensor?, through lastBlock: Int, workspace ws: Workspace,
                           streamer: BlockStreamer,
                           afterBlock: (Int, UnsafeMutablePointer<Float>, Int, Int) throws -> Void) throws -> InputGeometry {
        let stem = Model(config: config, parameters: parameters, precision: precision, parallelism: parallelism)
        let g = try stem.runBlocks(x, masks: masks, through: -1, workspace: ws) { _, _, _, _ in }
        let d = config.embedDim
        let residual = ws.buffer(.residual, g.rows * d).pointer
        let passes = self.passes(g)
        for i in stride(from: 0, through: Swift.min(lastBlock, config.depth - 1), by: 1) {
            try streamer.withBlock(i, of: self) { block in
                for (b0, pass) in passes {
                    let passResidual = residual + b0 * g.tokens * d
                    try block.runPass(pass, residual: passResidual, through: 0, workspace: ws) { _ in
                        try afterBlock(i, passResidual, b0 * g.tokens, pass.rows)
                    }
                }
            }
        }
        return g
    }

    /// `body` with block `i`'s weights: from `parameters`, or bound for the call in a streamed
    /// model.
    func withBlockParameters<R>(_ i: Int, _ body: (BlockParameters) throws -> R) throws -> R {
        guard let streamer else { return try body(parameters.blocks[i]) }
        return try streamer.withBlock(i, of: self) { try body($0.parameters.blocks[0]) }
    }
}
