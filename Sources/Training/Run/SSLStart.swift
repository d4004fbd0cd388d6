import DINOv2
import Formats
import Foundation
import TensorStore

/// Where a run starts: released backbone weights (no heads: the heads are built with the
/// official init) or an official training checkpoint (student, teacher, heads and centres taken
/// from it).
public enum SSLStart {
    /// The SSL step's config for a run: backbone, heads, losses and optimiser constants.
    public static func sslConfig(run c: SSLRunConfig, backbone: Config, totalSteps: Int) -> SSLConfig {
        let d = backbone.embedDim
        let dino = HeadConfig(inDim: d, outDim: c.headPrototypes, hiddenDim: c.headHiddenDim,
                              bottleneckDim: c.headBottleneckDim, layers: c.headLayers)
        let ibot = c.ibotSeparateHead
            ? HeadConfig(inDim: d, outDim: c.ibotHeadPrototypes, hiddenDim: c.headHiddenDim,
                         bottleneckDim: c.headBottleneckDim, layers: c.headLayers)
            : nil
        var loss = LossConfig()
        loss.studentTemperature = c.studentTemp
        loss.teacherTemperature = c.teacherTemp
        loss.targets = TeacherTargets(rawValue: c.centering) ?? .centering
        loss.centerMomentum = c.centerMomentum
        loss.dinoWeight = c.dinoLossWeight
        loss.ibotWeight = c.ibotLossWeight
        loss.koleoWeight = c.koleoLossWeight
        var optim = OptimConfig()
        optim.weightDecay = c.weightDecay
        optim.layerwiseDecay = c.layerwiseDecay
        optim.patchEmbedLRMultiplier = c.patchEmbedLRMult
        optim.clipGrad = c.clipGrad
        optim.beta1 = c.beta1
        optim.beta2 = c.beta2
        return SSLConfig(backbone: backbone, dinoHead: dino, ibotHead: ibot, loss: loss, optim: optim,
                         teacherMomentum: c.momentumTeacher, steps: totalSteps, globalCrops: 2,
                         localCrops: c.localCropsNumber, batchSize: c.batchSize, imageSize: c.globalCropsSize)
    }

    /// A backbone in any layout DinoKit reads (hub, HF, timm; a training checkpoint's teacher),
    /// as hub names with its config. A missing `mask_token` (timm) becomes zeros, its official init.
    public static func backbone(store: TensorStore, file: String, numHeads: Int?) throws -> (Config, TensorStore) {
        var hub = try KeyLayouts.canonicalize(store, which: .teacher).store
        if let numHeads { hub.metadata["num_heads"] = String(numHeads) }
        let config = try Config.detect(hubStore: hub, numHeads: numHeads)
        try config.requireDINOv2(for: "SSL training (train ssl)")
        if hub["mask_token"] == nil {
            try hub.insert(try Tensor(shape: [1, config.embedDim], floats: [Float](repeating: 0, count: config.embedDim)),
                           named: "mask_token")
        }
        return (config, hub)
    }

    /// Student = teacher = the backbone; heads with the official init (dino_head.py), the teacher's
    /// a copy of the student's (`SSLMetaArch.prepare_for_distributed_training`); centres zero.
    public static func fromBackbone(hub: TensorStore, config: SSLConfig, seed: UInt64, file: String) throws -> SSLModel {
        let model = SSLModel(config: config, seed: 0)
        try model.student.backbone.load(from: hub, prefix: "", file: file, strict: false)
        for (i, (_, block)) in model.student.named.enumerated() where i > 0 {
            initializeHead(block, seed: seed, index: UInt64(i))
        }
        for (t, s) in zip(model.teacher.blocks, model.student.blocks) { t.copy(from: s) }
        return model
    }

    /// `DINOHead.__init__`: each MLP Linear `trunc_normal_(std=0.02)` (torch's default bounds
    /// ±2 are absolute, 100σ here) with zero bias, then `last_layer` as a default `nn.Linear`
    /// (kaiming_uniform a=√5: U(±1/√bottleneck)) wrapped in `weight_norm` with `weight_g` set to 1.
    /// Draws come from `RunRandom(seed, 0x4845_4144 ("HEAD"), module, tensor)`.
    public static func initializeHead(_ block: ParameterBlock, seed: UInt64, index: UInt64) {
        for (si, slot) in block.layout.slots.enumerated() {
            var g = RunRandom(seed: seed, 0x4845_4144, index, UInt64(si))
            let p = block.base + slot.offset
            if slot.name == "last_layer.weight_g" {
                for i in 0..<slot.count { p[i] = 1 }
            } else if slot.name == "last_layer.weight_v" {
                let bound = 1 / Double(slot.shape[1]).squareRoot()
                for i in 0..<slot.count { p[i] = Float(g.uniform(-bound, bound)) }
            } else if slot.name.hasSuffix(".bias") {
                for i in 0..<slot.count { p[i] = 0 }
            } else {
                for i in 0..<slot.count {
                    var x = g.normal() * 0.02
                    while abs(x) > 2 { x = g.normal() * 0.02 }
                    p[i] = Float(x)
                }
            }
        }
    }

    /// An official training checkpoint (`{"model": {student.*, teacher.*, dino_loss.center,
    /// ibot_patch_loss.center}, ...}`, blocks possibly chunked) as the names `SSLModel` reads.
    public static func trainingState(_ store: TensorStore) throws -> TensorStore {
        var out = TensorStore()
        out.metadata = store.metadata
        let roots = ["student.", "teacher.", SSLModel.dinoCenterName, SSLModel.ibotCenterName]
        for (name, t) in store.tensors {
            var n = name
            for wrapper in ["module.", "_fsdp_wrapped_module.", "_orig_mod."] { n = n.replacingOccurrences(of: wrapper, with: "") }
            if n.hasPrefix("model.") { n = String(n.dropFirst(6)) }
            guard roots.contains(where: { n.hasPrefix($0) }) else { continue }
            var parts = n.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            // student.backbone.blocks.<chunk>.<i>.rest -> student.backbone.blocks.<i>.rest
            if parts.count > 5, parts[1] == "backbone", parts[2] == "blocks", Int(parts[3]) != nil, Int(parts[4]) != nil {
                parts.remove(at: 3)
            }
            try out.insert(t, named: parts.joined(separator: "."))
        }
        return out
    }

    /// Head sizes as a training state holds them (`<prefix>mlp...`, `<prefix>last_layer.weight_v`).
    public static func headConfig(in store: TensorStore, prefix: String, inDim: Int, file: String) throws -> HeadConfig {
        guard let v = store[prefix + "last_layer.weight_v"], v.shape.dims.count == 2 else {
            throw SSLRunError.weights(path: file, message: "no '\(prefix)last_layer.weight_v' (out, bottleneck)")
        }
        let out = v.shape.dims[0], bottleneck = v.shape.dims[1]
        if store[prefix + "mlp.weight"] != nil {
            return HeadConfig(inDim: inDim, outDim: out, hiddenDim: bottleneck, bottleneckDim: bottleneck, layers: 1)
        }
        var layers = 0
        while store[prefix + "mlp.\(2 * layers).weight"] != nil { layers += 1 }
        guard layers >= 2, let first = store[prefix + "mlp.0.weight"], first.shape.dims.count == 2 else {
            throw SSLRunError.weights(path: file, message: "cannot read the head's MLP under '\(prefix)mlp.'")
        }
        return HeadConfig(inDim: inDim, outDim: out, hiddenDim: first.shape.dims[0], bottleneckDim: bottleneck, layers: layers)
    }

    /// True when `store` has a student and a teacher with heads: a training checkpoint to continue.
    public static func isTrainingState(_ store: TensorStore) -> Bool {
        store.names.contains { $0.hasPrefix("student.dino_head.") } && store.names.contains { $0.hasPrefix("teacher.backbone.") }
    }
}
