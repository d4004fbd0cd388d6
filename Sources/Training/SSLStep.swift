import DINOv2
import Foundation
import Kernels
import TensorStore

/// The loss terms of one step as `SSLMetaArch.forward_backward` adds them (weights applied; iBOT
/// with its ×2×½; KoLeo not halved), and their sum in that order.
public struct LossTerms: Codable, Sendable, Equatable {
    public var dinoLocal: Double
    public var dinoGlobal: Double
    public var koleo: Double
    public var ibot: Double
    public var total: Double

    public init(dinoLocal: Double, dinoGlobal: Double, koleo: Double, ibot: Double, total: Double) {
        self.dinoLocal = dinoLocal
        self.dinoGlobal = dinoGlobal
        self.koleo = koleo
        self.ibot = ibot
        self.total = total
    }

    enum CodingKeys: String, CodingKey {
        case dinoLocal = "dino_local", dinoGlobal = "dino_global", koleo, ibot, total
    }

    /// (name, value) in expected.json's order.
    public var named: [(String, Double)] {
        [("dino_local", dinoLocal), ("dino_global", dinoGlobal), ("koleo", koleo), ("ibot", ibot), ("total", total)]
    }
}

/// Wall time of a step's phases, in seconds (the last step's).
public struct StepTimings: Codable, Sendable, Equatable {
    /// Teacher backbone and head(s) on the global crops, then the targets.
    public var teacher = 0.0
    /// Student backbone on the global and local crops, and the head(s).
    public var studentForward = 0.0
    /// DINO, iBOT and KoLeo terms with their gradients at the head outputs.
    public var losses = 0.0
    /// Heads' and backbone's backward.
    public var backward = 0.0
    /// Clipping, AdamW and the teacher EMA.
    public var update = 0.0

    public init() {}

    public var total: Double { teacher + studentForward + losses + backward + update }

    enum CodingKeys: String, CodingKey {
        case teacher, studentForward = "student_forward", losses, backward, update
    }
}

/// One official DINOv2 training iteration on the CPU (ssl_meta_arch.py `forward_backward`, then
/// train.py's clipping, optimiser step and `update_teacher`; spec §3–4):
///
/// 1. teacher backbone on the global crops (no masks, no gradient); cls tokens swapped between the
///    two crops; the patch tokens at the masked positions; teacher head(s);
/// 2. targets: centering (with the lazy update) or Sinkhorn-Knopp;
/// 3. student backbone on the masked global crops and the local crops; one head pass over
///    [local cls; global cls; masked patches] (or the masked patches through the iBOT head);
/// 4. DINO local and global terms, KoLeo on the student's global cls tokens, iBOT; backward;
/// 5. per-module clipping, AdamW with DINOv2's parameter groups, teacher EMA.
///
/// Activations are allocated once per input geometry and reused; head buffers grow to the
/// largest masked-patch count seen.
public final class SSLTrainer {
    public let model: SSLModel
    /// d total / d every student parameter after `forwardBackward` (before clipping).
    public let gradients: SSLModules
    public let optimizer: AdamW
    public var groups: [[ParameterGroup]]
    public var parallelism: Parallelism
    /// Drop path for the student's blocks (the teacher never has it); nil or rate 0: off, as in
    /// the debug states.
    public var stochasticDepth: StochasticDepth?
    /// Phase times of the last step.
    public private(set) var timings = StepTimings()
    var workspace: StepWorkspace?
    private let studentTensors: ModuleTensors, teacherTensors: ModuleTensors, gradientTensors: ModuleTensors
    private let studentBlocks: [ParameterBlock], teacherBlocks: [ParameterBlock], gradientBlocks: [ParameterBlock]

    public init(model: SSLModel, parallelism: Parallelism = .fromEnvironment) {
        self.model = model
        self.parallelism = parallelism
        let c = model.config
        gradients = SSLModules(config: c)
        studentTensors = ModuleTensors(model.student, config: c)
        teacherTensors = ModuleTensors(model.teacher, config: c)
        gradientTensors = ModuleTensors(gradients, config: c)
        studentBlocks = model.student.blocks
        teacherBlocks = model.teacher.blocks
        gradientBlocks = gradients.blocks
        optimizer = AdamW(modules: gradients.blocks.map(\.layout), beta1: c.optim.beta1, beta2: c.optim.beta2,
                          eps: c.optim.eps)
        groups = model.student.named.map { name, block in
            ParamGroups.groups(for: block.layout, depth: name == "backbone" ? c.backbone.depth : 0,
                               layerwiseDecay: c.optim.layerwiseDecay,
                               patchEmbedLRMultiplier: c.optim.patchEmbedLRMultiplier)
        }
    }

    /// Bytes of activation and scratch memory held for the last geometry.
    public var workspaceBytes: Int { workspace?.byteCount ?? 0 }

    /// A whole step: forward, backward, clipping, AdamW, EMA. Returns the loss terms.
    @discardableResult
    public func step(_ batch: SSLBatch, hyper: StepHyperparameters) throws -> LossTerms {
        let terms = try forwardBackward(batch, hyper: hyper)
        update(hyper: hyper)
        return terms
    }

    /// Clips each student module's gradient to `clip_grad`, steps AdamW, updates the teacher.
    /// Returns the modules' gradient norms before clipping.
    @discardableResult
    public func update(hyper: StepHyperparameters) -> [Double] {
        let start = monotonicSeconds()
        defer { timings.update = monotonicSeconds() - start }
        let c = model.config
        let norms = gradientBlocks.map { c.optim.clipGrad > 0 ? clipGradientNorm($0, maxNorm: c.optim.clipGrad) : 0 }
        optimizer.step(params: studentBlocks, grads: gradientBlocks, groups: groups, hyper: hyper,
                       parallelism: parallelism)
        for (t, s) in zip(teacherBlocks, studentBlocks) {
            updateTeacher(t, from: s, momentum: hyper.teacherMomentum, parallelism: parallelism)
        }
        return norms
    }

    /// Teacher targets, student forward, losses and backward; gradients land in `gradients`
    /// (zeroed first). The phases are those of the official `forward_backward`
    /// (ssl_meta_arch.py), each timed into `timings`.
    public func forwardBackward(_ batch: SSLBatch, hyper: StepHyperparameters) throws -> LossTerms {
        let plan = try planStep(for: batch)
        var clock = monotonicSeconds()
        func lap() -> Double {
            let now = monotonicSeconds()
            defer { clock = now }
            return now - clock
        }
        for g in gradientBlocks { g.zero() }

        try teacherForwardAndTargets(plan, batch, temperature: Float(hyper.teacherTemperature))
        timings.teacher = lap()
        studentForward(plan, batch)
        timings.studentForward = lap()
        let raw = studentLosses(plan)
        timings.losses = lap()
        studentBackward(plan)
        timings.backward = lap()

        let w = model.config.loss
        let terms = (w.dinoWeight * raw.dinoLocal, w.dinoWeight * raw.dinoGlobal, w.koleoWeight * raw.koleo,
                     w.ibotWeight * raw.ibot)
        return LossTerms(dinoLocal: terms.0, dinoGlobal: terms.1, koleo: terms.2, ibot: terms.3,
                         total: terms.0 + terms.1 + terms.2 + terms.3)
    }

    /// Sizes the workspace for the batch, lists the masked patch rows (`mask_indices_list`, in
    /// row-major (crop, patch) order) with their `masks_weight`, and sizes the heads.
    private func planStep(for batch: SSLBatch) throws -> StepPlan {
        let c = model.config, backbone = c.backbone
        try batch.validate(channels: backbone.inChannels, patch: backbone.patchSize, what: "batch")
        let ws = try prepareWorkspace(for: batch)
        let b = batch.batchSize, localPerImage = batch.localCount
        let global = ws.global
        let patchesPerCrop = global.patches
        let maskedCount: Int = batch.masks.withUnsafeBufferPointer { m in
            var j = 0
            for i in 0..<(2 * b * patchesPerCrop) where m[i] {
                ws.maskRows[j] = (i / patchesPerCrop) * global.tokens + 1 + backbone.registerTokens + i % patchesPerCrop
                j += 1
            }
            _ = iBOTPatchLoss.maskWeights(masks: m.baseAddress!, crops: 2 * b, patches: patchesPerCrop,
                                          into: ws.maskWeights.pointer)
            return j
        }
        let shared = c.ibotHead == nil
        let maskedRows = c.loss.ibotWeight > 0 ? maskedCount : 0
        let teacherDinoRows = 2 * b + (shared ? maskedRows : 0)
        let studentDinoRows = localPerImage * b + 2 * b + (shared ? maskedRows : 0)
        let dinoHead = ws.head(.dino, config: c.dinoHead, rows: Swift.max(teacherDinoRows, studentDinoRows))
        let ibotHead = shared ? dinoHead : ws.head(.ibot, config: c.ibotHeadConfig, rows: Swift.max(maskedRows, 1))
        let dinoClasses = c.dinoHead.outDim, ibotClasses = c.ibotHeadConfig.outDim
        ws.ensureTargets(dino: 2 * b * dinoClasses, ibot: maskedRows * ibotClasses)
        return StepPlan(workspace: ws, global: global, local: ws.local, images: b, localPerImage: localPerImage,
                        width: backbone.embedDim, sharedHead: shared, maskedRows: maskedRows,
                        dinoClasses: dinoClasses, ibotClasses: ibotClasses, teacherDinoRows: teacherDinoRows,
                        studentDinoRows: studentDinoRows, dinoHead: dinoHead, ibotHead: ibotHead)
    }

    /// The teacher on the global crops, its heads on the swapped cls rows and the masked patch
    /// rows, then the targets: centred softmax or Sinkhorn-Knopp.
    private func teacherForwardAndTargets(_ plan: StepPlan, _ batch: SSLBatch, temperature tauT: Float) throws {
        let c = model.config, par = parallelism, ws = plan.workspace, global = plan.global
        let b = plan.images, d = plan.width, k = plan.dinoClasses
        batch.globalCrops.withUnsafeBufferPointer { px in
            backboneForward(teacherTensors.backbone, global, pixels: px.baseAddress!, masks: nil, parallelism: par)
        }
        let dinoIn = plan.dinoHead.acts.input.pointer
        for row in 0..<(2 * b) {
            // The swap: target row i of crop 1 comes from crop 2 of the same image, and back.
            let image = (row + b) % (2 * b)
            (dinoIn + row * d).update(from: global.normOut + image * global.tokens * d, count: d)
        }
        let ibotIn = plan.ibotHead.acts.input.pointer + (plan.sharedHead ? 2 * b * d : 0)
        for j in 0..<plan.maskedRows { (ibotIn + j * d).update(from: global.normOut + ws.maskRows[j] * d, count: d) }
        dinoHeadForward(teacherTensors.dinoHead, plan.dinoHead.acts, rows: plan.teacherDinoRows, parallelism: par)
        if !plan.sharedHead, plan.maskedRows > 0, let th = teacherTensors.ibotHead {
            dinoHeadForward(th, plan.ibotHead.acts, rows: plan.maskedRows, parallelism: par)
        }

        let doIBOT = c.loss.ibotWeight > 0
        let teacherCls = UnsafePointer(plan.dinoHead.acts.logits.pointer)
        let teacherPatches = UnsafePointer(plan.ibotHead.acts.logits.pointer + (plan.sharedHead ? 2 * b * k : 0))
        switch c.loss.targets {
        case .centering:
            model.dinoCenter.softmaxCentered(out: ws.dinoTargets.pointer, teacher: teacherCls, rows: 2 * b, temperature: tauT,
                                             parallelism: par)
            model.dinoCenter.queueBatchMean(teacherCls, rows: 2 * b)
            if doIBOT {
                model.ibotCenter.softmaxCentered(out: ws.ibotTargets.pointer, teacher: teacherPatches, rows: plan.maskedRows,
                                                 temperature: tauT, parallelism: par)
                model.ibotCenter.queueBatchMean(teacherPatches, rows: plan.maskedRows)
            }
        case .sinkhornKnopp:
            try SinkhornKnopp.targets(out: ws.dinoTargets.pointer, teacher: teacherCls, rows: 2 * b, classes: k,
                                      temperature: tauT, scratch: ws.sinkhornScratch, parallelism: par)
            if doIBOT {
                try SinkhornKnopp.targets(out: ws.ibotTargets.pointer, teacher: teacherPatches, rows: plan.maskedRows,
                                          classes: plan.ibotClasses, temperature: tauT, scratch: ws.sinkhornScratch,
                                          parallelism: par)
            }
        }
    }

    /// The student on the global crops (masked) and the local crops, then its heads on every cls
    /// row (local crops first, as the official code concatenates them) and the masked patch rows.
    private func studentForward(_ plan: StepPlan, _ batch: SSLBatch) {
        let par = parallelism, ws = plan.workspace, global = plan.global
        let b = plan.images, nl = plan.localPerImage, d = plan.width
        let studentBackbone = studentTensors.backbone
        func backbone(_ a: BackboneActivations, _ px: UnsafePointer<Float>, _ masks: UnsafePointer<Bool>?) {
            if var sd = stochasticDepth, sd.rate > 0 {
                backboneForward(studentBackbone, a, pixels: px, masks: masks, stochasticDepth: &sd, parallelism: par)
                stochasticDepth = sd
            } else {
                backboneForward(studentBackbone, a, pixels: px, masks: masks, parallelism: par)
            }
        }
        batch.globalCrops.withUnsafeBufferPointer { px in
            batch.masks.withUnsafeBufferPointer { m in backbone(global, px.baseAddress!, m.baseAddress!) }
        }
        let dinoIn = plan.dinoHead.acts.input.pointer
        if let local = plan.local {
            batch.localCrops.withUnsafeBufferPointer { px in backbone(local, px.baseAddress!, nil) }
            for j in 0..<(nl * b) { (dinoIn + j * d).update(from: local.normOut + j * local.tokens * d, count: d) }
        }
        for i in 0..<(2 * b) { (dinoIn + (nl * b + i) * d).update(from: global.normOut + i * global.tokens * d, count: d) }
        let ibotIn = plan.ibotHead.acts.input.pointer + plan.studentPatchRowOffset * d
        for j in 0..<plan.maskedRows { (ibotIn + j * d).update(from: global.normOut + ws.maskRows[j] * d, count: d) }
        dinoHeadForward(studentTensors.dinoHead, plan.dinoHead.acts, rows: plan.studentDinoRows, parallelism: par)
        if let h = studentTensors.ibotHead, plan.maskedRows > 0 {
            dinoHeadForward(h, plan.ibotHead.acts, rows: plan.maskedRows, parallelism: par)
        }
    }

    /// The unweighted loss terms, with their gradients with respect to the head outputs (and,
    /// for KoLeo, the global cls rows) written into the workspace.
    private func studentLosses(_ plan: StepPlan) -> (dinoLocal: Double, dinoGlobal: Double, koleo: Double, ibot: Double) {
        let c = model.config, par = parallelism, ws = plan.workspace, global = plan.global
        let b = plan.images, nl = plan.localPerImage, d = plan.width, k = plan.dinoClasses
        let tauS = Float(c.loss.studentTemperature)
        let logits = UnsafePointer(plan.dinoHead.acts.logits.pointer)
        let dlogits = plan.dinoHead.dlogits.pointer
        dlogits.update(repeating: 0, count: plan.studentDinoRows * k)
        let local = DINOLoss.localTerm(studentLocal: logits, teacher: ws.dinoTargets.pointer, batch: b, localCrops: nl,
                                       classes: k, studentTemperature: tauS, weight: c.loss.dinoWeight,
                                       dlocal: dlogits, parallelism: par)
        var dinoGlobal = 0.0, koleo = 0.0, ibot = 0.0
        ws.dcls.pointer.update(repeating: 0, count: 2 * b * d)
        if c.loss.dinoWeight > 0 {
            dinoGlobal = DINOLoss.globalTerm(studentGlobal: logits + nl * b * k, teacher: ws.dinoTargets.pointer, batch: b,
                                             localCrops: nl, classes: k, studentTemperature: tauS, weight: c.loss.dinoWeight,
                                             dglobal: dlogits + nl * b * k, parallelism: par)
            if c.loss.koleoWeight > 0 {
                for i in 0..<(2 * b) { (ws.cls.pointer + i * d).update(from: global.normOut + i * global.tokens * d, count: d) }
                for crop in 0..<2 {
                    koleo += KoLeoLoss.term(x: ws.cls.pointer + crop * b * d, rows: b, dim: d, weight: c.loss.koleoWeight,
                                            dx: ws.dcls.pointer + crop * b * d, scratch: ws.koleoScratch.pointer)
                }
            }
        }
        if c.loss.ibotWeight > 0 {
            let offset = plan.studentPatchRowOffset
            let studentPatches = UnsafePointer(plan.ibotHead.acts.logits.pointer + offset * k)
            let dpatches = plan.sharedHead ? dlogits + offset * k : plan.ibotHead.dlogits.pointer
            if !plan.sharedHead { dpatches.update(repeating: 0, count: plan.maskedRows * plan.ibotClasses) }
            ibot = iBOTPatchLoss.term(student: studentPatches, teacher: ws.ibotTargets.pointer, weights: ws.maskWeights.pointer,
                                      maskedRows: plan.maskedRows, crops: 2 * b, classes: plan.ibotClasses,
                                      studentTemperature: tauS, weight: c.loss.ibotWeight, dstudent: dpatches,
                                      parallelism: par)
        }
        return (local, dinoGlobal, koleo, ibot)
    }

    /// Backward: the heads, then the gradient of every x_norm row a loss read (head plus KoLeo at
    /// the global cls rows, iBOT at the masked rows), then the backbone for global and local crops.
    private func studentBackward(_ plan: StepPlan) {
        let par = parallelism, ws = plan.workspace, global = plan.global
        let b = plan.images, nl = plan.localPerImage, d = plan.width
        let studentBackbone = studentTensors.backbone
        dinoHeadBackward(studentTensors.dinoHead, gradientTensors.dinoHead, plan.dinoHead.acts, plan.dinoHead.scratch,
                         dlogits: plan.dinoHead.dlogits.pointer, dinput: plan.dinoHead.dinput.pointer,
                         rows: plan.studentDinoRows, parallelism: par)
        if let h = studentTensors.ibotHead, let g = gradientTensors.ibotHead, plan.maskedRows > 0 {
            dinoHeadBackward(h, g, plan.ibotHead.acts, plan.ibotHead.scratch, dlogits: plan.ibotHead.dlogits.pointer,
                             dinput: plan.ibotHead.dinput.pointer, rows: plan.maskedRows, parallelism: par)
        }
        let dGlobal = ws.dGlobal.pointer, dIn = plan.dinoHead.dinput.pointer
        dGlobal.update(repeating: 0, count: global.rows * d)
        for i in 0..<(2 * b) {
            // The head's gradient plus KoLeo's, both at the global cls rows.
            let dst = dGlobal + i * global.tokens * d, head = dIn + (nl * b + i) * d, koleoGrad = ws.dcls.pointer + i * d
            for e in 0..<d { dst[e] = head[e] + koleoGrad[e] }
        }
        let dMasked = plan.ibotHead.dinput.pointer + plan.studentPatchRowOffset * d
        for j in 0..<plan.maskedRows {
            let dst = dGlobal + ws.maskRows[j] * d, src = dMasked + j * d
            for e in 0..<d { dst[e] += src[e] }
        }
        let backboneGrads = gradientTensors.backbone
        backboneBackward(studentBackbone, backboneGrads, global, ws.scratch, dnormOut: dGlobal, parallelism: par)
        if let local = plan.local {
            let dLocal = ws.dLocal.pointer
            dLocal.update(repeating: 0, count: local.rows * d)
            for j in 0..<(nl * b) { (dLocal + j * local.tokens * d).update(from: dIn + j * d, count: d) }
            backboneBackward(studentBackbone, backboneGrads, local, ws.scratch, dnormOut: dLocal, parallelism: par)
        }
    }

    private func prepareWorkspace(for batch: SSLBatch) throws -> StepWorkspace {
        let key = StepWorkspace.Key(batch: batch.batchSize, globalSize: batch.globalSize, localCount: batch.localCount,
                                    localSize: batch.localSize, stochasticDepth: (stochasticDepth?.rate ?? 0) > 0,
                                    threads: parallelism.threads)
        if let ws = workspace, ws.key == key { return ws }
        workspace = nil
        let ws = try StepWorkspace(config: model.config, key: key, parallelism: parallelism)
        workspace = ws
        return ws
    }
}

/// What the phases of one step share: the workspace and the activations they run on, the
/// batch's sizes, and how the head rows are laid out.
private struct StepPlan {
    let workspace: StepWorkspace
    /// The two global crops of every image, and the local crops (nil without local crops).
    let global: BackboneActivations
    let local: BackboneActivations?
    /// B, the images in the batch; local crops per image; D, the backbone width.
    let images: Int
    let localPerImage: Int
    let width: Int
    /// iBOT uses the DINO head (`ibot_separate_head` false): its rows follow the cls rows there.
    let sharedHead: Bool
    /// Masked patch rows the iBOT loss reads (0 when its weight is 0).
    let maskedRows: Int
    let dinoClasses: Int
    let ibotClasses: Int
    /// Rows through the DINO head: the teacher's global cls rows, the student's local and global
    /// cls rows, each followed by the masked rows when the head is shared.
    let teacherDinoRows: Int
    let studentDinoRows: Int
    let dinoHead: HeadWorkspace
    let ibotHead: HeadWorkspace

    /// First row of the student's masked patches in the iBOT head's buffers.
    var studentPatchRowOffset: Int { sharedHead ? localPerImage * images + 2 * images : 0 }
}


/// A head's activations with its backward buffers, for up to `capacity` rows.
final class HeadWorkspace {
    let acts: HeadActivations
    let scratch: HeadGradScratch
    /// (rows, out) dL/dlogits; (rows, in) dL/dinput.
    let dlogits: FloatBuffer
    let dinput: FloatBuffer
    var capacity: Int { acts.capacity }

    init(config h: HeadConfig, capacity: Int) {
        acts = HeadActivations(config: h, capacity: capacity)
        scratch = HeadGradScratch(config: h, capacity: capacity)
        dlogits = FloatBuffer(count: capacity * h.outDim)
        dinput = FloatBuffer(count: capacity * h.inDim)
    }

    var byteCount: Int { acts.byteCount + 4 * (scratch.dWeight.count + scratch.a.count + scratch.b.count + dlogits.count + dinput.count) }
}

/// Everything one input geometry needs, made once.
final class StepWorkspace {
    /// What the buffers are sized for (attention scratch is per thread).
    struct Key: Equatable {
        let batch: Int, globalSize: Int, localCount: Int, localSize: Int, stochasticDepth: Bool, threads: Int
    }
    enum HeadRole { case dino, ibot }

    let key: Key
    let global: BackboneActivations
    let local: BackboneActivations?
    let scratch: BackboneGradScratch
    /// (2B·Tg, D), (L·B·Tl, D): dL/dx_norm of the student's passes.
    let dGlobal: FloatBuffer, dLocal: FloatBuffer
    /// (2B, D): the student's global cls tokens for KoLeo and their gradient.
    let cls: FloatBuffer, dcls: FloatBuffer
    let koleoScratch: FloatBuffer
    /// Per masked patch: its row in the global x_norm, its iBOT weight.
    var maskRows: [Int]
    let maskWeights: FloatBuffer
    private(set) var dinoTargets: FloatBuffer, ibotTargets: FloatBuffer
    /// K Doubles for Sinkhorn-Knopp's per-prototype sums.
    let sinkhornScratch: UnsafeMutablePointer<Double>
    private var heads: [HeadRole: HeadWorkspace] = [:]

    init(config c: SSLConfig, key: Key, parallelism: Parallelism) throws {
        self.key = key
        let bc = c.backbone, d = bc.embedDim, b = key.batch
        global = try BackboneActivations(config: bc, batch: 2 * b, height: key.globalSize, width: key.globalSize,
                                         stochasticDepth: key.stochasticDepth)
        local = key.localCount > 0
            ? try BackboneActivations(config: bc, batch: key.localCount * b, height: key.localSize, width: key.localSize,
                                      stochasticDepth: key.stochasticDepth)
            : nil
        scratch = BackboneGradScratch(serving: [global] + (local.map { [$0] } ?? []), parallelism: parallelism)
        dGlobal = FloatBuffer(count: global.rows * d)
        dLocal = FloatBuffer(count: (local?.rows ?? 0) * d)
        cls = FloatBuffer(count: 2 * b * d)
        dcls = FloatBuffer(count: 2 * b * d)
        koleoScratch = FloatBuffer(count: KoLeoLoss.scratchCount(rows: b, dim: d))
        maskRows = [Int](repeating: 0, count: 2 * b * global.patches)
        maskWeights = FloatBuffer(count: 2 * b * global.patches)
        dinoTargets = FloatBuffer(count: 2 * b * c.dinoHead.outDim)
        ibotTargets = FloatBuffer(count: 0)
        let k = Swift.max(c.dinoHead.outDim, c.ibotHeadConfig.outDim)
        sinkhornScratch = .allocate(capacity: k)
        sinkhornScratch.initialize(repeating: 0, count: k)
    }

    deinit { sinkhornScratch.deallocate() }

    /// The head buffers for `role`, grown (with headroom) when `rows` exceeds them.
    func head(_ role: HeadRole, config: HeadConfig, rows: Int) -> HeadWorkspace {
        if let h = heads[role], h.capacity >= rows { return h }
        let h = HeadWorkspace(config: config, capacity: rows + rows / 4)
        heads[role] = h
        return h
    }

    func ensureTargets(dino: Int, ibot: Int) {
        if dinoTargets.count < dino { dinoTargets = FloatBuffer(count: dino) }
        if ibotTargets.count < ibot { ibotTargets = FloatBuffer(count: ibot + ibot / 4) }
    }

    var byteCount: Int {
        global.byteCount + (local?.byteCount ?? 0) + scratch.byteCount + heads.values.reduce(0) { $0 + $1.byteCount }
            + 4 * (dGlobal.count + dLocal.count + cls.count + dcls.count + koleoScratch.count + maskWeights.count
                   + dinoTargets.count + ibotTargets.count)
    }
}
