import DINOv2
import Foundation

/// How the teacher's targets are made (train.centering).
public enum TeacherTargets: String, Sendable, Codable {
    case centering
    case sinkhornKnopp = "sinkhorn_knopp"
}

/// Loss settings (dino.*, ibot.*, train.centering; spec §3).
public struct LossConfig: Sendable, Equatable {
    public var studentTemperature: Double = 0.1
    public var teacherTemperature: Double = 0.07
    public var targets: TeacherTargets = .centering
    public var centerMomentum: Double = 0.9
    public var dinoWeight: Double = 1
    public var ibotWeight: Double = 1
    public var koleoWeight: Double = 0.1

    public init() {}
}

/// Optimiser settings (optim.*; spec §4.2–4.4). `lr`, `lastLayerLR`, `weightDecay` are one
/// iteration's schedule values.
public struct OptimConfig: Sendable, Equatable {
    public var lr: Double = 0
    public var lastLayerLR: Double = 0
    public var weightDecay: Double = 0.04
    public var layerwiseDecay: Double = 0.9
    public var patchEmbedLRMultiplier: Double = 0.2
    public var clipGrad: Double = 3.0
    public var beta1: Double = 0.9
    public var beta2: Double = 0.999
    public var eps: Double = 1e-8

    public init() {}
}

/// Everything that fixes one SSL training step: the backbone (DINOv2's `Config`), the heads
/// (`ibotHead` nil: iBOT shares the DINO head), losses, optimiser, teacher momentum and the crop
/// counts. `config.json` of a debug state holds exactly this.
public struct SSLConfig: Sendable, Equatable {
    public var backbone: Config
    public var dinoHead: HeadConfig
    public var ibotHead: HeadConfig?
    public var loss: LossConfig
    public var optim: OptimConfig
    public var teacherMomentum: Double
    public var steps: Int
    public var globalCrops: Int
    public var localCrops: Int
    public var batchSize: Int
    /// The backbone's `img_size` (the position table has its img_size/p grid). Crops of any
    /// other size are resampled, global ones included; a run sets it to its global crop size as
    /// train.py does, a checkpoint's table may still have another grid.
    public var imageSize: Int

    public init(backbone: Config, dinoHead: HeadConfig, ibotHead: HeadConfig?, loss: LossConfig, optim: OptimConfig,
                teacherMomentum: Double, steps: Int, globalCrops: Int = 2, localCrops: Int, batchSize: Int, imageSize: Int) {
        self.backbone = backbone
        self.dinoHead = dinoHead
        self.ibotHead = ibotHead
        self.loss = loss
        self.optim = optim
        self.teacherMomentum = teacherMomentum
        self.steps = steps
        self.globalCrops = globalCrops
        self.localCrops = localCrops
        self.batchSize = batchSize
        self.imageSize = imageSize
    }

    /// The hyperparameters every step of a debug state uses (constant schedules).
    public var hyperparameters: StepHyperparameters {
        StepHyperparameters(lr: optim.lr, lastLayerLR: optim.lastLayerLR, weightDecay: optim.weightDecay,
                            teacherMomentum: teacherMomentum, teacherTemperature: loss.teacherTemperature)
    }

    /// The iBOT head's config (the DINO head's when shared).
    public var ibotHeadConfig: HeadConfig { ibotHead ?? dinoHead }

    /// SwiGLU's real hidden width for a nominal `int(D · 4)` (swiglu_ffn.py): ((int(h·2/3) + 7) // 8) · 8.
    public static func swigluHidden(embedDim: Int, mlpRatio: Double = 4) -> Int {
        let nominal = Int(Double(embedDim) * mlpRatio)
        return (Int(Double(nominal) * 2 / 3) + 7) / 8 * 8
    }
}

// MARK: - config.json

extension SSLConfig {
    public static let format = "dinokit-sslstep/1"

    private struct File: Decodable {
        struct Backbone: Decodable {
            var embed_dim: Int, depth: Int, num_heads: Int, patch_size: Int, img_size: Int
            var num_register_tokens: Int, ffn: String, layerscale_init: Double?
            var interpolate_offset: Double, interpolate_antialias: Bool
        }
        struct Head: Decodable { var out_dim: Int, hidden_dim: Int, bottleneck_dim: Int, nlayers: Int }
        struct Loss: Decodable {
            var student_temp: Double, teacher_temp: Double, centering: String, center_momentum: Double
            var dino_weight: Double, ibot_weight: Double, koleo_weight: Double
        }
        struct Optim: Decodable {
            var lr: Double, last_layer_lr: Double, weight_decay: Double, layerwise_decay: Double
            var patch_embed_lr_mult: Double, clip_grad: Double, beta1: Double, beta2: Double, eps: Double
        }
        var format: String
        var backbone: Backbone
        var dino_head: Head
        var ibot_head: Head?
        var loss: Loss
        var optim: Optim
        var teacher_momentum: Double
        var steps: Int
        var n_global_crops: Int
        var n_local_crops: Int
        var batch_size: Int
    }

    /// Parses and checks a debug state's config.json. `layerScale` says whether the weights have
    /// LayerScale (decided by the weights, not by `layerscale_init`).
    public static func parse(json data: Data, file: String, layerScale: Bool = true) throws -> SSLConfig {
        func fail(_ m: String) -> TrainingError { .config(file: file, message: m) }
        let f: File
        do {
            f = try JSONDecoder().decode(File.self, from: data)
        } catch let DecodingError.keyNotFound(key, ctx) {
            throw fail("missing key '\((ctx.codingPath.map(\.stringValue) + [key.stringValue]).joined(separator: "."))'")
        } catch let DecodingError.typeMismatch(_, ctx) {
            throw fail("wrong type at '\(ctx.codingPath.map(\.stringValue).joined(separator: "."))': \(ctx.debugDescription)")
        } catch let DecodingError.valueNotFound(_, ctx) {
            throw fail("null at '\(ctx.codingPath.map(\.stringValue).joined(separator: "."))'")
        } catch {
            throw fail("not valid JSON (\(error))")
        }
        guard f.format == format else { throw fail("format is '\(f.format)', expected '\(format)'") }
        let b = f.backbone
        guard b.embed_dim > 0, b.depth >= 0, b.num_heads > 0, b.embed_dim % b.num_heads == 0 else {
            throw fail("backbone: embed_dim \(b.embed_dim) must be a positive multiple of num_heads \(b.num_heads)")
        }
        guard b.patch_size > 0, b.img_size >= b.patch_size, b.img_size % b.patch_size == 0 else {
            throw fail("backbone: img_size \(b.img_size) must be a positive multiple of patch_size \(b.patch_size)")
        }
        guard b.num_register_tokens >= 0, b.interpolate_offset >= 0, b.interpolate_offset.isFinite else {
            throw fail("backbone: negative num_register_tokens or interpolate_offset")
        }
        guard let ffn = Config.FFN(rawValue: b.ffn) else { throw fail("backbone: ffn '\(b.ffn)' is not 'mlp' or 'swiglu'") }
        let hidden = ffn == .swiglu ? swigluHidden(embedDim: b.embed_dim) : 4 * b.embed_dim
        let grid = b.img_size / b.patch_size
        let backbone = Config(embedDim: b.embed_dim, depth: b.depth, numHeads: b.num_heads, patchSize: b.patch_size,
                              registerTokens: b.num_register_tokens, ffn: ffn, ffnHidden: hidden, positionGrid: grid,
                              layerScale: layerScale,
                              interpolation: PositionInterpolation(offset: b.interpolate_offset,
                                                                   antialias: b.interpolate_antialias))
        func head(_ h: File.Head, _ what: String) throws -> HeadConfig {
            guard h.out_dim > 0, h.hidden_dim > 0, h.bottleneck_dim > 0, h.nlayers >= 1 else {
                throw fail("\(what): sizes must be positive")
            }
            return HeadConfig(inDim: b.embed_dim, outDim: h.out_dim, hiddenDim: h.hidden_dim,
                              bottleneckDim: h.bottleneck_dim, layers: h.nlayers)
        }
        var loss = LossConfig()
        guard let targets = TeacherTargets(rawValue: f.loss.centering) else {
            throw fail("loss.centering '\(f.loss.centering)' is not 'centering' or 'sinkhorn_knopp'")
        }
        guard f.loss.student_temp > 0, f.loss.teacher_temp > 0 else { throw fail("loss: temperatures must be positive") }
        loss.studentTemperature = f.loss.student_temp
        loss.teacherTemperature = f.loss.teacher_temp
        loss.targets = targets
        loss.centerMomentum = f.loss.center_momentum
        loss.dinoWeight = f.loss.dino_weight
        loss.ibotWeight = f.loss.ibot_weight
        loss.koleoWeight = f.loss.koleo_weight
        var optim = OptimConfig()
        let o = f.optim
        guard [o.lr, o.last_layer_lr, o.weight_decay, o.layerwise_decay, o.patch_embed_lr_mult, o.clip_grad, o.eps]
            .allSatisfy({ $0 >= 0 && $0.isFinite }), (0..<1).contains(o.beta1), (0..<1).contains(o.beta2) else {
            throw fail("optim: rates, decays, clip and eps must be finite and non-negative, betas in [0, 1)")
        }
        optim.lr = o.lr
        optim.lastLayerLR = o.last_layer_lr
        optim.weightDecay = o.weight_decay
        optim.layerwiseDecay = o.layerwise_decay
        optim.patchEmbedLRMultiplier = o.patch_embed_lr_mult
        optim.clipGrad = o.clip_grad
        optim.beta1 = o.beta1
        optim.beta2 = o.beta2
        optim.eps = o.eps
        guard f.n_global_crops == 2 else { throw fail("n_global_crops is \(f.n_global_crops); the official step asserts 2") }
        guard f.n_local_crops >= 0, f.batch_size > 0, f.steps >= 0 else {
            throw fail("n_local_crops, batch_size and steps must be non-negative (batch_size positive)")
        }
        return SSLConfig(backbone: backbone, dinoHead: try head(f.dino_head, "dino_head"),
                         ibotHead: try f.ibot_head.map { try head($0, "ibot_head") }, loss: loss, optim: optim,
                         teacherMomentum: f.teacher_momentum, steps: f.steps, globalCrops: f.n_global_crops,
                         localCrops: f.n_local_crops, batchSize: f.batch_size, imageSize: b.img_size)
    }
}
