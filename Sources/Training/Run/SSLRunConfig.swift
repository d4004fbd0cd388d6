import Foundation

/// Everything a `dinokit train ssl` run is made of, written to the run folder as `config.json`
/// (snake_case keys). Defaults are for adapting a pretrained backbone to a small image folder on a
/// CPU; the official values (ssl_default_config.yaml) are noted where they differ. Epochs are
/// passes over the data (the official `OFFICIAL_EPOCH_LENGTH` of 1,250 iterations is for
/// ImageNet-scale data).
public struct SSLRunConfig: Codable, Sendable, Equatable {
    public static let format = "dinokit-sslrun/1"
    public var format = SSLRunConfig.format

    // Run length and batches.
    public var epochs = 10
    public var batchSize = 16
    public var seed: UInt64 = 0

    // Learning rate: lr = base_lr · sqrt(batch / 1024) (`scaling_rule: sqrt_wrt_1024`) unless
    // `lr` is given; linear warm-up from 0, then cosine to `min_lr`.
    public var baseLR = 0.004
    public var lr: Double? = nil
    public var minLR = 1e-6
    /// Official 10 of 100 epochs.
    public var warmupEpochs = 1.0
    public var weightDecay = 0.04
    public var weightDecayEnd = 0.4
    public var layerwiseDecay = 0.9
    public var patchEmbedLRMult = 0.2
    public var clipGrad = 3.0
    public var beta1 = 0.9
    public var beta2 = 0.999
    /// The DINO head's last layer gets lr 0 for this many epochs (official 1).
    public var freezeLastLayerEpochs = 1.0

    // Teacher.
    public var momentumTeacher = 0.992
    public var finalMomentumTeacher = 1.0
    public var warmupTeacherTemp = 0.04
    public var teacherTemp = 0.07
    /// Official 30 of 100 epochs.
    public var warmupTeacherTempEpochs = 3.0
    public var studentTemp = 0.1
    public var centering = "centering"
    public var centerMomentum = 0.9

    // Losses.
    public var dinoLossWeight = 1.0
    public var ibotLossWeight = 1.0
    public var koleoLossWeight = 0.1

    // Heads (built with the official init when the starting weights have none). Official:
    // 65,536 prototypes; 4,096 keep the heads' last layers (and logits) 16× smaller, which a CPU
    // and a few thousand images need: far fewer prototypes than images is what DINO assumes.
    public var headPrototypes = 4096
    public var headHiddenDim = 2048
    public var headBottleneckDim = 256
    public var headLayers = 3
    /// iBOT with its own head (official default false: iBOT shares the DINO head).
    public var ibotSeparateHead = false
    public var ibotHeadPrototypes = 4096

    // Student.
    /// Official 0.3 (ViT-L); 0.1 suits ViT-S/B on little data.
    public var dropPathRate = 0.1
    public var dropPathUniform = true

    // Crops and masks (data/augmentations.py, data/masking.py).
    public var globalCropsSize = 224
    public var localCropsSize = 98
    public var localCropsNumber = 8
    public var globalCropsScale = [0.32, 1.0]
    public var localCropsScale = [0.05, 0.32]
    public var maskRatioMinMax = [0.1, 0.5]
    public var maskSampleProbability = 0.5

    // DinoKit's own.
    /// Backbone blocks trained with lr 0 and weight decay 0 (`--freeze-blocks 0-7`).
    public var freezeBlocks: [Int] = []
    /// Steps at the start with the backbone frozen, training only the heads.
    public var headsWarmupSteps = 0
    /// A checkpoint every this many steps (0: at epoch ends only); always one at each epoch end.
    public var checkpointEvery = 0
    /// Checkpoints kept in run/checkpoints (the newest ones).
    public var keepCheckpoints = 3

    public init() {}

    enum CodingKeys: String, CodingKey {
        case format, epochs, batchSize = "batch_size", seed
        case baseLR = "base_lr", lr, minLR = "min_lr", warmupEpochs = "warmup_epochs", weightDecay = "weight_decay"
        case weightDecayEnd = "weight_decay_end", layerwiseDecay = "layerwise_decay", patchEmbedLRMult = "patch_embed_lr_mult"
        case clipGrad = "clip_grad", beta1 = "adamw_beta1", beta2 = "adamw_beta2"
        case freezeLastLayerEpochs = "freeze_last_layer_epochs"
        case momentumTeacher = "momentum_teacher", finalMomentumTeacher = "final_momentum_teacher"
        case warmupTeacherTemp = "warmup_teacher_temp", teacherTemp = "teacher_temp"
        case warmupTeacherTempEpochs = "warmup_teacher_temp_epochs", studentTemp = "student_temp", centering
        case centerMomentum = "center_momentum"
        case dinoLossWeight = "dino_loss_weight", ibotLossWeight = "ibot_loss_weight", koleoLossWeight = "koleo_loss_weight"
        case headPrototypes = "head_n_prototypes", headHiddenDim = "head_hidden_dim"
        case headBottleneckDim = "head_bottleneck_dim", headLayers = "head_nlayers"
        case ibotSeparateHead = "ibot_separate_head", ibotHeadPrototypes = "ibot_head_n_prototypes"
        case dropPathRate = "drop_path_rate", dropPathUniform = "drop_path_uniform"
        case globalCropsSize = "global_crops_size", localCropsSize = "local_crops_size", localCropsNumber = "local_crops_number"
        case globalCropsScale = "global_crops_scale", localCropsScale = "local_crops_scale"
        case maskRatioMinMax = "mask_ratio_min_max", maskSampleProbability = "mask_sample_probability"
        case freezeBlocks = "freeze_blocks", headsWarmupSteps = "heads_warmup_steps"
        case checkpointEvery = "checkpoint_every", keepCheckpoints = "keep_checkpoints"
    }

    /// The learning rate after the scaling rule.
    public var scaledLR: Double { lr ?? baseLR * (Double(batchSize) / 1024).squareRoot() }

    /// A config file: any subset of the keys over the defaults; an unknown key is an error
    /// (a typo must not silently train with a default).
    public static func load(json data: Data, file: String, over base: SSLRunConfig = SSLRunConfig()) throws -> SSLRunConfig {
        func fail(_ m: String) -> SSLRunError { .config(file: file, message: m) }
        guard data.count <= maximumFileBytes else {
            throw fail("\(data.count) bytes exceed the \(maximumFileBytes)-byte limit for a config")
        }
        guard let user = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw fail("not a JSON object")
        }
        let known = Set(CodingKeys.allKeys)
        if let bad = user.keys.sorted().first(where: { !known.contains($0) }) {
            throw fail("unknown key '\(bad)' (known: \(known.sorted().joined(separator: ", ")))")
        }
        let defaults = try JSONSerialization.jsonObject(with: try base.encoded()) as? [String: Any] ?? [:]
        let merged = defaults.merging(user) { _, new in new }
        let c: SSLRunConfig
        do {
            c = try JSONDecoder().decode(SSLRunConfig.self, from: try JSONSerialization.data(withJSONObject: merged))
        } catch let DecodingError.typeMismatch(_, ctx) {
            throw fail("wrong type at '\(ctx.codingPath.map(\.stringValue).joined(separator: "."))'")
        } catch {
            throw fail("cannot read (\(error))")
        }
        try c.validate(file: file)
        return c
    }

    /// Sorted keys, pretty-printed: the run folder's config.json.
    public func encoded() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try e.encode(self)
    }

    public func validate(file: String = "config") throws {
        func fail(_ m: String) -> SSLRunError { .config(file: file, message: m) }
        guard format == Self.format else { throw fail("format is '\(format)', expected '\(Self.format)'") }
        guard epochs > 0, batchSize > 0 else { throw fail("epochs and batch_size must be positive") }
        let rates = [baseLR, lr ?? 0, minLR, warmupEpochs, weightDecay, weightDecayEnd, layerwiseDecay, patchEmbedLRMult,
                     clipGrad, freezeLastLayerEpochs, warmupTeacherTempEpochs, dropPathRate, centerMomentum,
                     dinoLossWeight, ibotLossWeight, koleoLossWeight, maskSampleProbability]
        guard rates.allSatisfy({ $0 >= 0 && $0.isFinite }) else { throw fail("rates, epochs, weights and decays must be finite and non-negative") }
        guard (0..<1).contains(beta1), (0..<1).contains(beta2) else { throw fail("adamw betas must be in [0, 1)") }
        guard studentTemp > 0, teacherTemp > 0, warmupTeacherTemp > 0 else { throw fail("temperatures must be positive") }
        guard (0...1).contains(momentumTeacher), (0...1).contains(finalMomentumTeacher) else { throw fail("teacher momenta must be in [0, 1]") }
        guard TeacherTargets(rawValue: centering) != nil else { throw fail("centering '\(centering)' is not 'centering' or 'sinkhorn_knopp'") }
        guard headPrototypes > 0, ibotHeadPrototypes > 0, headHiddenDim > 0, headBottleneckDim > 0, headLayers >= 1 else {
            throw fail("head sizes must be positive")
        }
        guard dropPathRate < 1 else { throw fail("drop_path_rate must be below 1") }
        guard globalCropsSize > 0, localCropsSize > 0, localCropsNumber >= 0 else { throw fail("crop sizes must be positive") }
        for (name, pair) in [("global_crops_scale", globalCropsScale), ("local_crops_scale", localCropsScale),
                             ("mask_ratio_min_max", maskRatioMinMax)] {
            guard pair.count == 2, pair[0] >= 0, pair[0] <= pair[1], pair[1] <= 1 else { throw fail("\(name) must be [min, max] within [0, 1]") }
        }
        guard freezeBlocks.allSatisfy({ $0 >= 0 }), headsWarmupSteps >= 0, checkpointEvery >= 0, keepCheckpoints >= 1 else {
            throw fail("freeze_blocks, heads_warmup_steps and checkpoint_every must be non-negative, keep_checkpoints positive")
        }
    }

    /// "0-7", "0,2,5-6" → block indices.
    public static func parseBlocks(_ text: String) throws -> [Int] {
        var out: [Int] = []
        for part in text.split(separator: ",") {
            let ends = part.split(separator: "-", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
            if ends.count == 1, let a = ends[0], a >= 0 {
                out.append(a)
            } else if ends.count == 2, let a = ends[0], let b = ends[1], a >= 0, a <= b {
                out += Array(a...b)
            } else {
                throw SSLRunError.config(file: "--freeze-blocks", message: "'\(part)' is not a block index or a range like 0-7")
            }
        }
        return Array(Set(out)).sorted()
    }
}

extension SSLRunConfig.CodingKeys: CaseIterable {
    static var allKeys: [String] { allCases.map(\.rawValue) }
}
