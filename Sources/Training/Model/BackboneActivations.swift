import DINOv2
import Kernels
import TensorStore

/// Hands out 64-byte-aligned pieces of one allocation, llm.c's `acts_memory`.
struct BufferCarver {
    private(set) var total = 0
    private var pieces: [Int] = []

    /// Reserves `count` floats; returns the piece's index.
    mutating func reserve(_ count: Int) -> Int {
        pieces.append(total)
        total += (Swift.max(count, 0) + 15) & ~15
        return pieces.count - 1
    }

    func pointer(_ piece: Int, in buffer: FloatBuffer) -> UnsafeMutablePointer<Float> { buffer.pointer + pieces[piece] }
}

/// What one block's training forward keeps for its backward (all (rows, ·) row-major).
public struct SavedBlock {
    /// The block's input x (read, not owned: the previous block's `output` or the tokens).
    public var input: UnsafeMutablePointer<Float>
    public var norm1, norm1Mean, norm1Rstd: UnsafeMutablePointer<Float>
    /// (rows, 3D); (batch, heads, tokens, tokens) softmax probabilities.
    public var qkv, probabilities: UnsafeMutablePointer<Float>
    /// (rows, D) heads concatenated; `proj` of it, the attention branch before LayerScale.
    public var attention, attentionBranch: UnsafeMutablePointer<Float>
    /// x + ls1(attention branch).
    public var middle: UnsafeMutablePointer<Float>
    public var norm2, norm2Mean, norm2Rstd: UnsafeMutablePointer<Float>
    /// (rows, fc1 width) fc1/w12 output; (rows, hidden) GELU or SwiGLU of it; fc2/w3 output.
    public var hidden, gated, ffnBranch: UnsafeMutablePointer<Float>
    /// middle + ls2(ffn branch): the next block's input.
    public var output: UnsafeMutablePointer<Float>
    /// Stochastic depth: the images each branch ran on, and the branch inputs gathered for them
    /// (unused when the subsets are the identity).
    public var attentionSubset: BranchSubset
    public var ffnSubset: BranchSubset
    public var attentionInput: UnsafeMutablePointer<Float>
    public var ffnInput: UnsafeMutablePointer<Float>
    /// DINOv3: the grid's RoPE tables (shared by every block) and the (3D) scratch for the
    /// masked qkv bias; nil for DINOv2.
    public var rotary: RotaryPositions?
    public var maskedQKVBias: UnsafeMutablePointer<Float>
}

/// Everything a backbone's training forward keeps for one batch size and image size
/// (llm.c's `ActivationTensors`), in one allocation made once and reused step after step.
public final class BackboneActivations {
    public let config: Config
    public let batch: Int, height: Int, width: Int
    public let patchRows: Int, patchCols: Int
    public var patches: Int { patchRows * patchCols }
    public let tokens: Int
    public var rows: Int { batch * tokens }
    /// DINOv2: the position table's resampling to this grid; nil for DINOv3 (no table).
    public let resampling: PositionResampling?
    /// DINOv3: the RoPE tables of this grid, applied to q and k of the patch tokens in every
    /// block; nil for DINOv2.
    public let rotary: RotaryPositions?

    public let memory: FloatBuffer
    /// (batch·P, C·p·p) unfolded pixels; (batch·P, D) patch embedding.
    public let unfolded, patchOut: UnsafeMutablePointer<Float>
    /// (1 + P, D) the resampled position table; scratch for resampling.
    public let position, positionScratch: UnsafeMutablePointer<Float>
    /// (rows, D): block 0's input.
    public let embedded: UnsafeMutablePointer<Float>
    public let blocks: [SavedBlock]
    /// Final norm: (rows, D) output `x_norm` and its (rows) statistics.
    public let normOut, normMean, normRstd: UnsafeMutablePointer<Float>
    /// (batch·P) mask bits of the current forward; `hasMasks` false means no masking.
    public let masks: UnsafeMutablePointer<Bool>
    public var hasMasks = false

    /// `stochasticDepth`: room for drop path's gathered branch inputs (two (rows, D) buffers per
    /// block); without it the forward runs every branch on every image. `ropePeriods`: a DINOv3
    /// model's `rope_embed.periods` (`BackboneBuffers`); nil means the official formula.
    public init(config c: Config, batch: Int, height: Int, width: Int, stochasticDepth: Bool = false,
                ropePeriods: [Float]? = nil) throws {
        let p = c.patchSize
        guard batch > 0, height >= p, width >= p, height % p == 0, width % p == 0 else {
            throw TrainingError.numeric("crops of \(height)x\(width) are not positive multiples of the patch size \(p)")
        }
        config = c
        self.batch = batch
        self.height = height
        self.width = width
        patchRows = height / p
        patchCols = width / p
        tokens = 1 + c.registerTokens + patchRows * patchCols
        if c.family == .dinov3 {
            resampling = nil
            let periods = try ropePeriods ?? RotaryPositions.periods(hubStore: TensorStore(), config: c)
            rotary = RotaryPositions(periods: periods, patchRows: patchRows, patchCols: patchCols)
        } else {
            resampling = try PositionResampling(config: c, patchRows: patchRows, patchCols: patchCols,
                                                imageHeight: height, imageWidth: width)
            rotary = nil
        }
        let d = c.embedDim, rows = batch * tokens, np = batch * patchRows * patchCols
        let fc1Width = c.ffn == .swiglu ? 2 * c.ffnHidden : c.ffnHidden
        var k = BufferCarver()
        let iUnfolded = k.reserve(np * c.inChannels * p * p), iPatchOut = k.reserve(np * d)
        let iPosition = k.reserve(c.family == .dinov3 ? 0 : (1 + patchRows * patchCols) * d)
        let iPosScratch = k.reserve(resampling?.scratchCount ?? 0), iMaskedBias = k.reserve(3 * d)
        let iEmbedded = k.reserve(rows * d)
        var blockPieces: [[Int]] = []
        for _ in 0..<c.depth {
            blockPieces.append([
                k.reserve(rows * d), k.reserve(rows), k.reserve(rows),                  // norm1
                k.reserve(rows * 3 * d), k.reserve(batch * c.numHeads * tokens * tokens), // qkv, probs
                k.reserve(rows * d), k.reserve(rows * d), k.reserve(rows * d),           // attention, branch, middle
                k.reserve(rows * d), k.reserve(rows), k.reserve(rows),                  // norm2
                k.reserve(rows * fc1Width), k.reserve(rows * c.ffnHidden), k.reserve(rows * d), k.reserve(rows * d),
                k.reserve(stochasticDepth ? rows * d : 0), k.reserve(stochasticDepth ? rows * d : 0),
            ])
        }
        let iNorm = k.reserve(rows * d), iMean = k.reserve(rows), iRstd = k.reserve(rows)
        memory = FloatBuffer(count: k.total)
        let m = memory
        unfolded = k.pointer(iUnfolded, in: m)
        patchOut = k.pointer(iPatchOut, in: m)
        position = k.pointer(iPosition, in: m)
        positionScratch = k.pointer(iPosScratch, in: m)
        embedded = k.pointer(iEmbedded, in: m)
        var saved: [SavedBlock] = []
        var input = embedded
        for pcs in blockPieces {
            let q = pcs.map { k.pointer($0, in: m) }
            let b = SavedBlock(input: input, norm1: q[0], norm1Mean: q[1], norm1Rstd: q[2], qkv: q[3], probabilities: q[4],
                               attention: q[5], attentionBranch: q[6], middle: q[7],
                               norm2: q[8], norm2Mean: q[9], norm2Rstd: q[10],
                               hidden: q[11], gated: q[12], ffnBranch: q[13], output: q[14],
                               attentionSubset: BranchSubset(capacity: batch), ffnSubset: BranchSubset(capacity: batch),
                               attentionInput: q[15], ffnInput: q[16], rotary: rotary,
                               maskedQKVBias: k.pointer(iMaskedBias, in: m))
            saved.append(b)
            input = b.output
        }
        blocks = saved
        normOut = k.pointer(iNorm, in: m)
        normMean = k.pointer(iMean, in: m)
        normRstd = k.pointer(iRstd, in: m)
        masks = .allocate(capacity: Swift.max(np, 1))
        masks.initialize(repeating: false, count: Swift.max(np, 1))
        supportsStochasticDepth = stochasticDepth
    }

    deinit { masks.deallocate() }

    /// Whether the activations have room for drop path's gathered inputs.
    public let supportsStochasticDepth: Bool

    /// The last block's output (the pre-norm stream), or the tokens for a depth-0 model.
    public var prenorm: UnsafeMutablePointer<Float> { blocks.last?.output ?? embedded }

    public var byteCount: Int { memory.count * 4 + batch * patches }
}

/// Scratch for a backbone's backward, sized for the largest pass it serves (reused by the
/// global and the local crops, one after the other).
public final class BackboneGradScratch {
    public let memory: FloatBuffer
    public let rowCapacity: Int
    /// (rows, D): the residual stream's gradient; branch, norm and attention gradients.
    public let dx, dbranch, dnorm, dattention: UnsafeMutablePointer<Float>
    /// (rows, 3D), (rows, fc1 width), (rows, hidden).
    public let dqkv, dhidden, dgated: UnsafeMutablePointer<Float>
    public let attentionScratch: UnsafeMutablePointer<Float>
    /// (batch·P, D), (1 + P, D), resampling scratch.
    public let dpatchOut, dposition, positionScratch: UnsafeMutablePointer<Float>
    /// (rows, D) each: a subset branch's scaled output gradient and its input gradient.
    public let dsubsetOut, dsubsetIn: UnsafeMutablePointer<Float>
    /// (3D): the gradient of DINOv3's masked qkv bias, before the mask carries it to the bias.
    public let dmaskedQKVBias: UnsafeMutablePointer<Float>

    public init(serving passes: [BackboneActivations], parallelism: Parallelism) {
        let c = passes[0].config, d = c.embedDim
        let rows = passes.map(\.rows).max() ?? 0
        let fc1Width = c.ffn == .swiglu ? 2 * c.ffnHidden : c.ffnHidden
        let attn = passes.map { attentionBackwardScratchCount(batch: $0.batch, heads: c.numHeads, tokens: $0.tokens,
                                                              parallelism: parallelism) }.max() ?? 0
        let np = passes.map { $0.batch * $0.patches }.max() ?? 0
        let pos = passes.map { 1 + $0.patches }.max() ?? 0
        let rs = passes.map { $0.resampling?.scratchCount ?? 0 }.max() ?? 0
        var k = BufferCarver()
        let pcs = [k.reserve(rows * d), k.reserve(rows * d), k.reserve(rows * d), k.reserve(rows * d),
                   k.reserve(rows * 3 * d), k.reserve(rows * fc1Width), k.reserve(rows * c.ffnHidden), k.reserve(attn),
                   k.reserve(np * d), k.reserve(pos * d), k.reserve(rs),
                   k.reserve(passes.contains { $0.supportsStochasticDepth } ? rows * d : 0),
                   k.reserve(passes.contains { $0.supportsStochasticDepth } ? rows * d : 0), k.reserve(3 * d)]
        let m = FloatBuffer(count: k.total)
        memory = m
        let q = pcs.map { k.pointer($0, in: m) }
        rowCapacity = rows
        dx = q[0]; dbranch = q[1]; dnorm = q[2]; dattention = q[3]
        dqkv = q[4]; dhidden = q[5]; dgated = q[6]; attentionScratch = q[7]
        dpatchOut = q[8]; dposition = q[9]; positionScratch = q[10]
        dsubsetOut = q[11]; dsubsetIn = q[12]; dmaskedQKVBias = q[13]
    }

    public var byteCount: Int { memory.count * 4 }
}
