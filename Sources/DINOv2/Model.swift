import Formats
import Kernels
import TensorStore

/// A DINOv2 or DINOv3 backbone (`DinoVisionTransformer` in evaluation mode) on the CPU,
/// numerically the official PyTorch model: every hub variant (DINOv2 ViT-S/B/L/g with or without
/// registers; DINOv3 ViT-S/16 … 7B/16) and any width/depth a checkpoint implies. The two families
/// share every block; they differ in token assembly (a position table, or none) and in RoPE on
/// the patch tokens' queries and keys (`RotaryPositions`).
///
/// Weights are bound by their hub names once, at init (or, for weights larger than memory, block
/// by block in every forward: `Loading.streamed`): the linear layers' packed for the GEMM in the
/// model's `precision`, the rest converted to Float32. Forwards share nothing mutable, so one
/// model may serve several threads (each with its own `Workspace`).
public struct Model: Sendable {
    public private(set) var config: Config
    /// Every weight as the forward reads it; a streamed model's has no blocks (see `Loading.streamed`).
    public let parameters: Parameters
    /// The linear layers' GEMM format, chosen at init (the packed weights are made in it).
    public let precision: Precision
    /// Threads for BLAS and DinoKit's own loops.
    public var parallelism: Parallelism
    /// Where a streamed model's blocks come from; nil when they are all in `parameters`.
    let streamer: BlockStreamer?

    /// Builds the model a store's weights describe. Heads default to the store's `num_heads`
    /// metadata or D/64; interpolation to the official semantics for the variant.
    public init(store: TensorStore, numHeads: Int? = nil, interpolation: PositionInterpolation? = nil,
                precision: Precision = .f32, parallelism: Parallelism = .fromEnvironment,
                loading: Loading = .inMemory) throws {
        let hub = try canonicalHubStore(store)
        var config = try Config.detect(hubStore: hub, numHeads: numHeads)
        if let interpolation { config.interpolation = interpolation }
        try self.init(hubStore: hub, config: config, precision: precision, parallelism: parallelism, loading: loading)
    }

    /// Binds hub-named weights to an explicit config. `precision` is the linear layers' GEMM
    /// format (`Precision`); `.f32`, the default, is DinoKit's exact numerics. `loading` says
    /// whether every block is bound now or one at a time in each forward (`Loading`).
    public init(hubStore: TensorStore, config: Config, precision: Precision = .f32,
                parallelism: Parallelism = .fromEnvironment, loading: Loading = .inMemory) throws {
        try config.validate()
        self.config = config
        self.precision = precision
        self.parallelism = parallelism
        switch loading.resolved(inMemoryBytes: Model.inMemoryWeightBytes(hubStore: hubStore)) {
        case .streamed:
            parameters = try Parameters(stemOf: hubStore, config: config, precision: precision)
            // Every block's names, shapes and dtypes are checked now, so that a forward cannot
            // fail halfway on a missing tensor; their bytes are read in the forwards.
            let check = WeightBinder(store: hubStore, checkingOnly: true)
            for i in 0..<config.depth { _ = try BlockParameters(binder: check, block: i, config: config) }
            streamer = BlockStreamer(hubStore: hubStore, stemBytes: parameters.stemByteCount)
        default:
            parameters = try Parameters(hubStore: hubStore, config: config, precision: precision)
            streamer = nil
        }
    }

    /// A model over weights already bound (a streamed model's one-block models).
    init(config: Config, parameters: Parameters, precision: Precision, parallelism: Parallelism) {
        self.config = config
        self.parameters = parameters
        self.precision = precision
        self.parallelism = parallelism
        self.streamer = nil
    }

    /// Position-embedding interpolation; may be changed on a built model (`verify --interpolation`).
    public var interpolation: PositionInterpolation {
        get { config.interpolation }
        set { config.interpolation = newValue }
    }

    // MARK: - Public forwards

    /// `forward_features(x, masks)`. `x` is (B, C, H, W) floating point with H, W multiples of the
    /// patch size; `masks` (optional) is bool (B, h·w), true where the mask token replaces a patch.
    public func forwardFeatures(_ x: Tensor, masks: Tensor? = nil, workspace: Workspace? = nil) throws -> FeatureOutputs {
        let ws = workspace ?? Workspace()
        let g = try runBlocks(x, masks: masks, through: config.depth - 1, workspace: ws) { _, _, _, _ in }
        let d = config.embedDim, r = config.registerTokens, t = g.tokens
        let prenorm = ws.buffer(.residual, g.rows * d).pointer
        let normed = ws.buffer(.normed, g.rows * d).pointer
        finalNorm(out: normed, inp: prenorm, images: g.batch, tokens: t)
        return FeatureOutputs(
            clsToken: try gatherTokens(normed, batch: g.batch, tokens: t, start: 0, count: 1, shape: [g.batch, d]),
            regTokens: try gatherTokens(normed, batch: g.batch, tokens: t, start: 1, count: r, shape: [g.batch, r, d]),
            patchTokens: try gatherTokens(normed, batch: g.batch, tokens: t, start: 1 + r, count: g.patches,
                                          shape: [g.batch, g.patches, d]),
            prenorm: try gatherTokens(prenorm, batch: g.batch, tokens: t, start: 0, count: t, shape: [g.batch, t, d]))
    }

    /// `forward(x)`: the normed class token (B, D) (the hub model's head is Identity).
    public func callAsFunction(_ x: Tensor, masks: Tensor? = nil, workspace: Workspace? = nil) throws -> Tensor {
        let ws = workspace ?? Workspace()
        let g = try runBlocks(x, masks: masks, through: config.depth - 1, workspace: ws) { _, _, _, _ in }
        let d = config.embedDim
        // Only the cls rows are needed: normalise those.
        let cls = ws.buffer(.classRows, g.batch * d).pointer
        let prenorm = ws.buffer(.residual, g.rows * d).pointer
        for b in 0..<g.batch { (cls + b * d).update(from: prenorm + b * g.tokens * d, count: d) }
        let out = ws.buffer(.normed, g.batch * d).pointer
        return try ws.profile.measure("final norm + output", threads: parallelism.threads) {
            finalNorm(out: out, inp: cls, images: g.batch, tokens: 1)
            return try gatherTokens(out, batch: g.batch, tokens: 1, start: 0, count: 1, shape: [g.batch, d])
        }
    }

    /// `get_intermediate_layers(x, n, reshape, return_class_token, norm)`: the residual stream
    /// after each selected block (no masks), normed with the final LayerNorm when `norm`, split
    /// into patch tokens (registers dropped) and, with `returnClassToken`, the class token.
    public func intermediateLayers(_ x: Tensor, n: LayerSelection = 1, reshape: Bool = false,
                                   returnClassToken: Bool = false, norm: Bool = true,
                                   workspace: Workspace? = nil) throws -> [IntermediateOutput] {
        let indices = try n.blockIndices(depth: config.depth)
        let ws = workspace ?? Workspace()
        let d = config.embedDim
        let geometry = try InputGeometry(config: config, input: x)
        let rows = geometry.rows, tokens = geometry.tokens
        // One buffer per selected block for the whole batch; images are filled in as they pass.
        let captured = indices.map { ($0, FloatBuffer(count: rows * d)) }
        let slot = Dictionary(uniqueKeysWithValues: captured.enumerated().map { ($1.0, $0) })
        let last = indices.last ?? -1
        let g = try runBlocks(x, masks: nil, through: last, workspace: ws) { block, residual, firstRow, count in
            guard let i = slot[block] else { return }
            let out = captured[i].1.pointer + firstRow * d
            if norm {
                finalNorm(out: out, inp: residual, images: count / tokens, tokens: tokens)
            } else {
                out.update(from: residual, count: count * d)
            }
        }
        let r = config.registerTokens
        return try captured.map { block, buf in
            var patches = try gatherTokens(buf.pointer, batch: g.batch, tokens: g.tokens, start: 1 + r, count: g.patches,
                                           shape: [g.batch, g.patches, d])
            if reshape {
                patches = try reshapeToGrid(patches, geometry: g)
            }
            let cls = returnClassToken
                ? try gatherTokens(buf.pointer, batch: g.batch, tokens: g.tokens, start: 0, count: 1, shape: [g.batch, d])
                : nil
            return IntermediateOutput(blockIndex: block, patchTokens: patches, classToken: cls)
        }
    }

    /// `intermediateLayers` with block indices (`get_intermediate_layers(x, n=[...])`).
    public func intermediateLayers(_ x: Tensor, indices: [Int], reshape: Bool = false,
                                   returnClassToken: Bool = false, norm: Bool = true,
                                   workspace: Workspace? = nil) throws -> [IntermediateOutput] {
        try intermediateLayers(x, n: .indices(indices), reshape: reshape, returnClassToken: returnClassToken,
                               norm: norm, workspace: workspace)
    }

    // MARK: - The pipeline

    /// Tokens then blocks 0…`lastBlock` into the workspace's residual buffer (all rows of the
    /// batch); `afterBlock(block, residual, firstRow, rows)` sees the residual stream after each
    /// block for the rows that just passed it.
    ///
    /// Images go through the blocks a few at a time (`imagesPerPass`): every activation of a pass
    /// then stays in the cores' caches (ViT-S/14 at 224: ~4 MB per image, against 2 MB of L2 per
    /// core), where a whole batch of 8 would stream tens of MB through L3 in every block. Only the
    /// residual stream is kept for the whole batch. Images are independent, so this changes no
    /// number.
    ///
    /// A streamed model runs the same passes in the other order: every pass's tokens, then each
    /// block over every pass (`runStreamedBlocks`).
    func runBlocks(_ x: Tensor, masks: Tensor?, through lastBlock: Int, workspace ws: Workspace,
                   afterBlock: (Int, UnsafeMutablePointer<Float>, Int, Int) throws -> Void) throws -> InputGeometry {
        if let streamer {
            return try runStreamedBlocks(x, masks: masks, through: lastBlock, workspace: ws, streamer: streamer,
                                         afterBlock: afterBlock)
        }
        let g = try InputGeometry(config: config, input: x)
        let maskBits = try g.maskBits(masks, hasMaskToken: parameters.maskToken != nil)
        let c = config, d = c.embedDim
        let residual = ws.buffer(.residual, g.rows * d).pointer
        let last = Swift.min(lastBlock, c.depth - 1)
        let pixelsPerImage = c.inChannels * g.height * g.width

        try withPixels(x, geometry: g, workspace: ws) { pixels in
            for (b0, pass) in passes(g) {
                let passMasks = maskBits.map { Array($0[(b0 * g.patches)..<((b0 + pass.batch) * g.patches)]) }
                let passResidual = residual + b0 * g.tokens * d
                try embedTokens(into: passResidual, pixels: pixels + b0 * pixelsPerImage, masks: passMasks,
                                geometry: pass, workspace: ws)
                guard last >= 0 else { continue }
                try runPass(pass, residual: passResidual, through: last, workspace: ws) { block in
                    try afterBlock(block, passResidual, b0 * g.tokens, pass.rows)
                }
            }
        }
        return g
    }

    /// The batch's passes: each one's first image and geometry, `imagesPerPass` images each.
    func passes(_ g: InputGeometry) -> [(firstImage: Int, geometry: InputGeometry)] {
        let perPass = imagesPerPass(tokens: g.tokens, batch: g.batch)
        return stride(from: 0, to: g.batch, by: perPass).map { b0 in
            (b0, g.slice(images: b0..<Swift.min(g.batch, b0 + perPass)))
        }
    }

    /// How many images go through the blocks together: about 256 rows per thread (two images of
    /// 257 tokens on two threads), and no more. Each weight panel is then read once per pass for
    /// that many rows, while the pass's activations still fit the threads' L2 caches; passes
    /// this size are split by columns (see `runPass`).
    func imagesPerPass(tokens: Int, batch: Int) -> Int {
        Swift.max(1, Swift.min(batch, (parallelism.threads * 256 + tokens - 1) / tokens))
    }

    /// Blocks 0…`last` on one pass of images whose tokens are in `residual`.
    func runPass(_ g: InputGeometry, residual: UnsafeMutablePointer<Float>, through last: Int, workspace ws: Workspace,
                 afterBlock: (Int) throws -> Void) throws {
        let c = config, d = c.embedDim, rows = g.rows
        let profile = ws.profile
        let hiddenWidth = c.ffn == .swiglu ? 2 * c.ffnHidden : c.ffnHidden
        let buffers = FusedBuffers(
            residual: residual,
            normed: ws.buffer(.normed, rows * d).pointer,
            qkv: ws.buffer(.qkv, rows * 3 * d).pointer,
            attention: ws.buffer(.attention, rows * d).pointer,
            branch: ws.buffer(.branch, rows * d).pointer,
            hidden: ws.buffer(.hidden, rows * hiddenWidth).pointer,
            gated: c.ffn == .swiglu ? ws.buffer(.gated, rows * c.ffnHidden).pointer : ws.buffer(.hidden, rows * hiddenWidth).pointer,
            attentionScratch: ws.buffer(.attentionScratch, attentionScratchCount(tokens: g.tokens, headDim: c.headDim,
                                                                                 parallelism: parallelism)).pointer)
        // See FusedBlock.swift: GEMMs split by columns below the row count at which each thread
        // has two of its row blocks, else threads take row ranges through the whole chain.
        let byColumns = parallelism.threads > 1 && rows < parallelism.threads * 288
        if byColumns {
            firstRowStage(0..<rows, buffers, parallel: parallelism, profile: profile)
        } else {
            rowsInParallel(rows, profile: profile) { range, p in firstRowStage(range, buffers, profile: p) }
        }
        let attentionFLOPs = 4 * Double(g.batch * g.tokens * g.tokens * d)
        let rope = rotaryPositions(patchRows: g.patchRows, patchCols: g.patchCols, workspace: ws)
        for i in 0...last {
            profile.measure(rope == nil ? "attention" : "RoPE + attention", flops: attentionFLOPs, threads: parallelism.threads) {
                attentionStage(i, buffers, batch: g.batch, tokens: g.tokens, rope: rope)
            }
            if byColumns {
                rowStage(i, 0..<rows, buffers, next: i < last, parallel: parallelism, profile: profile)
            } else {
                rowsInParallel(rows, profile: profile) { range, p in rowStage(i, range, buffers, next: i < last, profile: p) }
            }
            try afterBlock(i)
        }
    }

    /// `parallelRows`, each thread recording its own steps into `profile`, and the time threads
    /// spend waiting for the slowest one recorded as a step.
    func rowsInParallel(_ rows: Int, profile: ForwardProfile?, _ body: (Range<Int>, ForwardProfile?) -> Void) {
        guard let profile else {
            parallelRows(rows) { body($0, nil) }
            return
        }
        let before = profile.threadSeconds, start = monotonicSeconds()
        parallelRows(rows) { range in body(range, profile) }
        let wall = monotonicSeconds() - start
        profile.record("waiting for the slowest thread",
                       threadSeconds: wall * Double(parallelism.threads) - (profile.threadSeconds - before))
    }

    /// The final norm over `images` × `tokens` rows, each image's tokens starting with its cls
    /// token: `norm` on every row, or with DINOv3's untied norms `cls_norm` on the cls and storage
    /// rows and `norm` on the patches (`tokens` = 1: cls rows only).
    func finalNorm(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, images: Int, tokens: Int) {
        let d = config.embedDim, eps = config.layerNormEps
        func norm(_ weight: FloatBuffer, _ bias: FloatBuffer, from row: Int, rows: Int) {
            layerNormForward(out: out + row * d, mean: nil, rstd: nil, inp: inp + row * d, weight: weight.pointer,
                             bias: bias.pointer, rows: rows, cols: d, eps: eps, parallelism: parallelism)
        }
        guard let classNorm = parameters.classNorm else {
            norm(parameters.normWeight, parameters.normBias, from: 0, rows: images * tokens)
            return
        }
        let prefix = Swift.min(tokens, 1 + config.registerTokens)
        for b in 0..<images {
            norm(classNorm.weight, classNorm.bias, from: b * tokens, rows: prefix)
            norm(parameters.normWeight, parameters.normBias, from: b * tokens + prefix, rows: tokens - prefix)
        }
    }

    /// Calls `body` with the input as contiguous Float32: in place when it already is, else
    /// converted into the workspace.
    func withPixels<R>(_ x: Tensor, geometry g: InputGeometry, workspace ws: Workspace,
                       _ body: (UnsafePointer<Float>) throws -> R) throws -> R {
        let count = x.elementCount
        if x.dtype == .f32 {
            return try x.withContiguousBytes { raw in
                if let base = raw.baseAddress, Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 {
                    return try body(base.assumingMemoryBound(to: Float.self))
                }
                let buf = ws.buffer(.pixels, count)
                UnsafeMutableRawPointer(buf.pointer).copyMemory(from: raw.baseAddress!, byteCount: count * 4)
                return try body(buf.pointer)
            }
        }
        let values = x.floats()
        let buf = ws.buffer(.pixels, count)
        values.withUnsafeBufferPointer { buf.pointer.update(from: $0.baseAddress!, count: count) }
        return try body(buf.pointer)
    }

    /// Rows [start, start + count) of each batch item's `tokens` rows, as a new tensor.
    func gatherTokens(_ src: UnsafePointer<Float>, batch: Int, tokens: Int, start: Int, count: Int,
                      shape: [Int]) throws -> Tensor {
        let d = config.embedDim
        let storage = Storage(byteCount: batch * count * d * 4)
        if batch * count * d > 0 {
            let dst = storage.mutableBytes.baseAddress!.assumingMemoryBound(to: Float.self)
            for b in 0..<batch {
                (dst + b * count * d).update(from: src + (b * tokens + start) * d, count: count * d)
            }
        }
        return try Tensor(storage: storage, dtype: .f32, shape: Shape(shape))
    }

    /// (B, h·w, D) → (B, D, h, w), as `reshape(B, h, w, -1).permute(0, 3, 1, 2).contiguous()`.
    func reshapeToGrid(_ t: Tensor, geometry g: InputGeometry) throws -> Tensor {
        let d = config.embedDim, hw = g.patches
        let src = t.floats()
        let storage = Storage(byteCount: src.count * 4)
        if !src.isEmpty {
            let dst = storage.mutableBytes.baseAddress!.assumingMemoryBound(to: Float.self)
            for b in 0..<g.batch {
                for n in 0..<hw {
                    for i in 0..<d { dst[(b * d + i) * hw + n] = src[(b * hw + n) * d + i] }
                }
            }
        }
        return try Tensor(storage: storage, dtype: .f32, shape: [g.batch, d, g.patchRows, g.patchCols])
    }
}

/// The hub-named view of a store in any layout (hub, HF, timm, training checkpoint): the single
/// place where checkpoint layouts are translated for the model.
func canonicalHubStore(_ store: TensorStore) throws -> TensorStore {
    try KeyLayouts.canonicalize(store).store
}
