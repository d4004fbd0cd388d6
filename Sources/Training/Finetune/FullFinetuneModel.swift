import DINOv2
import Formats
import Kernels
import TensorStore

/// A backbone and a linear head trained together with cross-entropy: the backbone's training
/// forward (Model/Backbone+Backward.swift, no masks, no drop path), the head on its features, and
/// the gradient carried back through the head into every backbone tensor. DINOv2 or DINOv3: a
/// DINOv3 backbone's buffers (RoPE periods, qkv bias masks) ride along untrained.
public final class FullFinetuneModel {
    public let config: Config
    public let features: FinetuneFeatureKind
    public let backbone: ParameterBlock
    public let backboneBuffers: BackboneBuffers
    public let backboneGradients: ParameterBlock
    public let head: LinearHead
    public let headGradients: ParameterBlock
    private let tensors: BackboneTensors
    private let gradientTensors: BackboneTensors
    private var buffers: Buffers?

    /// What one batch geometry needs, made once and reused.
    private final class Buffers {
        let key: [Int]
        let acts: BackboneActivations
        let scratch: BackboneGradScratch
        let features, logits, dlogits, dfeatures, dnorm: FloatBuffer

        init(config c: Config, batch: Int, height: Int, width: Int, featureWidth f: Int, classes: Int,
             ropePeriods: [Float]?, parallelism: Parallelism) throws {
            key = [batch, height, width, parallelism.threads]
            acts = try BackboneActivations(config: c, batch: batch, height: height, width: width, ropePeriods: ropePeriods)
            scratch = BackboneGradScratch(serving: [acts], parallelism: parallelism)
            features = FloatBuffer(count: batch * f)
            logits = FloatBuffer(count: batch * classes)
            dlogits = FloatBuffer(count: batch * classes)
            dfeatures = FloatBuffer(count: batch * f)
            dnorm = FloatBuffer(count: acts.rows * c.embedDim)
        }
    }

    /// Backbone tensors from hub-named `hubStore` (a missing `mask_token` — unused here — is
    /// zeros), a zero head of `classes` outputs.
    public init(hubStore: TensorStore, config: Config, classes: Int, features: FinetuneFeatureKind, file: String) throws {
        self.config = config
        self.features = features
        // The 7B's attention has no qkv bias at all; the layout always trains one.
        guard config.architecture.qkvBias else {
            throw TrainingError.config(file: file, message: "full fine-tuning needs a qkv bias; this backbone has none")
        }
        backboneBuffers = try BackboneBuffers(hubStore: hubStore, config: config, file: file)
        let layout = backboneLayout(config)
        backbone = ParameterBlock(layout: layout)
        var store = hubStore
        if store[HubNames.maskToken] == nil {
            try store.insert(try Tensor(shape: [1, config.embedDim], floats: [Float](repeating: 0, count: config.embedDim)),
                             named: HubNames.maskToken)
        }
        try backbone.load(from: store, prefix: "", file: file, strict: false)
        backboneGradients = ParameterBlock(layout: layout)
        head = LinearHead(classes: classes, features: features.width(embedDim: config.embedDim))
        headGradients = ParameterBlock(layout: head.parameters.layout)
        tensors = BackboneTensors(backbone, config: config, buffers: backboneBuffers)
        gradientTensors = BackboneTensors(backboneGradients, config: config)
    }

    private func prepare(batch: Int, height: Int, width: Int, parallelism: Parallelism) throws -> Buffers {
        if let b = buffers, b.key == [batch, height, width, parallelism.threads] { return b }
        buffers = nil
        let b = try Buffers(config: config, batch: batch, height: height, width: width,
                            featureWidth: head.features, classes: head.classes, ropePeriods: backboneBuffers.ropePeriods,
                            parallelism: parallelism)
        buffers = b
        return b
    }

    private func forward(_ b: Buffers, pixels: UnsafePointer<Float>, parallelism: Parallelism) {
        backboneForward(tensors, b.acts, pixels: pixels, masks: nil, parallelism: parallelism)
        features.gather(normOut: b.acts.normOut, batch: b.acts.batch, tokens: b.acts.tokens,
                        registers: config.registerTokens, dim: config.embedDim, into: b.features.pointer)
        head.forward(b.features.pointer, rows: b.acts.batch, logits: b.logits.pointer, parallelism: parallelism)
    }

    private func checkInputs(pixels: [Float], labels: [Int], height: Int, width: Int) throws {
        guard !labels.isEmpty, pixels.count == labels.count * config.inChannels * height * width else {
            throw TrainingError.stepInput(file: "batch", message: "\(pixels.count) pixel values for \(labels.count) images of \(config.inChannels)x\(height)x\(width)")
        }
        guard labels.allSatisfy({ $0 >= 0 && $0 < head.classes }) else {
            throw TrainingError.stepInput(file: "batch", message: "a label is outside 0..<\(head.classes)")
        }
    }

    /// Forward, cross-entropy and backward for one batch (pixels (B, C, H, W) normalised): the
    /// gradients are overwritten into `backboneGradients` and `headGradients`.
    public func forwardBackward(pixels: [Float], labels: [Int], height: Int, width: Int,
                                parallelism: Parallelism) throws -> CrossEntropy.Result {
        try checkInputs(pixels: pixels, labels: labels, height: height, width: width)
        let b = try prepare(batch: labels.count, height: height, width: width, parallelism: parallelism)
        let rows = labels.count, c = config
        backboneGradients.zero()
        headGradients.zero()
        pixels.withUnsafeBufferPointer { forward(b, pixels: $0.baseAddress!, parallelism: parallelism) }
        let result = labels.withUnsafeBufferPointer { y in
            CrossEntropy.evaluate(logits: b.logits.pointer, labels: y.baseAddress!, rows: rows, classes: head.classes,
                                  dlogits: b.dlogits.pointer)
        }
        head.backward(b.features.pointer, dlogits: b.dlogits.pointer, rows: rows, grads: headGradients,
                      dinput: b.dfeatures.pointer, parallelism: parallelism)
        features.scatter(dfeatures: b.dfeatures.pointer, batch: rows, tokens: b.acts.tokens, registers: c.registerTokens,
                         dim: c.embedDim, into: b.dnorm.pointer)
        backboneBackward(tensors, gradientTensors, b.acts, b.scratch, dnormOut: b.dnorm.pointer, parallelism: parallelism)
        return result
    }

    /// Logits (count, classes) of the first `count` images of a batch of `batch` (the rest is
    /// padding so one set of buffers serves a partial last batch).
    public func logits(pixels: [Float], batch: Int, count: Int, height: Int, width: Int,
                       parallelism: Parallelism) throws -> [Float] {
        guard count <= batch, pixels.count == batch * config.inChannels * height * width else {
            throw TrainingError.stepInput(file: "batch", message: "\(pixels.count) pixel values for a batch of \(batch) images of \(height)x\(width)")
        }
        let b = try prepare(batch: batch, height: height, width: width, parallelism: parallelism)
        pixels.withUnsafeBufferPointer { forward(b, pixels: $0.baseAddress!, parallelism: parallelism) }
        return Array(UnsafeBufferPointer(start: b.logits.pointer, count: count * head.classes))
    }

    /// The backbone under its hub names as Float32, DINOv3's buffers included (num_heads in the
    /// metadata: widths that are not multiples of 64 need it to be read back).
    public func backboneStore() throws -> TensorStore {
        var store = TensorStore()
        try backbone.export(into: &store, prefix: "")
        try backboneBuffers.export(into: &store, config: config)
        store.metadata["num_heads"] = String(config.numHeads)
        return store
    }

    /// Parameter groups: the backbone's as DINOv2's layer-wise decay gives them (no decay on
    /// biases, norms, LayerScale), every lr scaled by `backboneLRScale`; the head at full lr.
    /// The mask token is frozen: without masks it gets no gradient, and torch's optimisers skip a
    /// parameter whose `.grad` is None (weight decay included).
    public func parameterGroups(backboneLRScale: Double, layerDecay: Double) -> [[ParameterGroup]] {
        let decay = ParamGroups.groups(for: backbone.layout, depth: config.depth, layerwiseDecay: layerDecay,
                                       patchEmbedLRMultiplier: 1)
        let bb = zip(backbone.layout.slots, decay).map { slot, g in
            slot.name == HubNames.maskToken
                ? ParameterGroup(lrMultiplier: 0, wdMultiplier: 0, isLastLayer: false)
                : ParameterGroup(lrMultiplier: g.lrMultiplier * backboneLRScale, wdMultiplier: g.wdMultiplier, isLastLayer: false)
        }
        return [bb, FinetuneOptimizer.headGroups(head.parameters.layout)]
    }
}
