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
    /// (zeroed first).
    public func forwardBackward(_ batch: SSLBatch, hyper: StepHyperparameters) throws -> LossTerms {
        let c = model.config, bc = c.backbone, d = bc.embedDim
        try batch.validate(channels: bc.inChannels, patch: bc.patchSize, what: "batch")
        let ws = try prepareWorkspace(for: batch)
        let par = parallelism
        let b = batch.batchSize, nl = batch.localCount
        let shared = c.ibotHead == nil
        let doDINO = c.loss.dinoWeight > 0, doKoLeo = c.loss.koleoWeight > 0, doIBOT = c.loss.ibotWeight > 0
        let ga = ws.global, la = ws.local
        let tg = ga.tokens, r = bc.registerTokens, np = ga.patches
        let k = c.dinoHead.outDim, ki = c.ibotHeadConfig.outDim
        let tauS = Float(c.loss.studentTemperature), tauT = Float(hyper.teacherTemperature)

        // Masked positions in row-major (crop, patch) order: `mask_indices_list` and `masks_weight`.
        let nm: Int = batch.masks.withUnsafeBufferPointer { m in
            var j = 0
            for i in 0..<(2 * b * np) where m[i] {
                ws.maskRows[j] = (i / np) * tg + 1 + r + i % np
                j += 1
            }
            _ = iBOTPatchLoss.maskWeights(masks: m.baseAddress!, crops: 2 * b, patches: np, into: ws.maskWeights.pointer)
            return j
        }
        let ibotRows = doIBOT ? nm : 0
        let dinoRowsTeacher = 2 * b + (shared ? ibotRows : 0)
        let dinoRowsStudent = nl * b + 2 * b + (shared ? ibotRows : 0)
        let dinoHead = ws.head(.dino, config: c.dinoHead, rows: Swift.max(dinoRowsTeacher, dinoRowsStudent))
        let ibotHead = shared ? dinoHead : ws.head(.ibot, config: c.ibotHeadConfig, rows: Swift.max(ibotRows, 1))
        ws.ensureTargets(dino: 2 * b * k, ibot: ibotRows * ki)
        var clock = monotonicSeconds()
        func lap() -> Double {
            let now = monotonicSeconds()
            defer { clock = now }
            return now - clock
        }
        for g in gradientBlocks { g.zero() }

        // 1. Teacher.
        let teacherBackbone = teacherTensors.backbone
        batch.globalCrops.withUnsafeBufferPointer { px in
            backboneForward(teacherBackbone, ga, pixels: px.baseAddress!, masks: nil, parallelism: par)
        }
        let dinoIn = dinoHead.acts.input.pointer
        for row in 0..<(2 * b) {
            // The swap: target row i of crop 1 comes from crop 2 of the same image, and back.
            let image = (row + b) % (2 * b)
            (dinoIn + row * d).update(from: ga.normOut + image * tg * d, count: d)
        }
        let ibotIn = ibotHead.acts.input.pointer + (shared ? 2 * b * d : 0)
        for j in 0..<ibotRows { (ibotIn + j * d).update(from: ga.normOut + ws.maskRows[j] * d, count: d) }
        dinoHeadForward(teacherTensors.dinoHead, dinoHead.acts, rows: dinoRowsTeacher, parallelism: par)
        if !shared, ibotRows > 0, let th = teacherTensors.ibotHead {
            dinoHeadForward(th, ibotHead.acts, rows: ibotRows, parallelism: par)
        }

        // 2. Targets.
        let teacherCls = UnsafePointer(dinoHead.acts.logits.pointer)
        let teacherPatches = UnsafePointer(ibotHead.acts.logits.pointer + (shared ? 2 * b * k : 0))
        switch c.loss.targets {
        case .centering:
            model.dinoCenter.softmaxCentered(out: ws.dinoTargets.pointer, teacher: teacherCls, rows: 2 * b, temperature: tauT,
                                             parallelism: par)
            model.dinoCenter.queueBatchMean(teacherCls, rows: 2 * b)
            if doIBOT {
                model.ibotCenter.softmaxCentered(out: ws.ibotTargets.pointer, teacher: teacherPatches, rows: ibotRows,
                                                 temperature: tauT, parallelism: par)
                model.ibotCenter.queueBatchMean(teacherPatches, rows: ibotRows)
            }
        case .sinkhornKnopp:
            try SinkhornKnopp.targets(out: ws.dinoTargets.pointer, teacher: teacherCls, rows: 2 * b, classes: k,
                                      temperature: tauT, scratch: ws.sinkhornScratch, parallelism: par)
            if doIBOT {
                try SinkhornKnopp.targets(out: ws.ibotTargets.pointer, teacher: teacherPatches, rows: ibotRows, classes: ki,
                                          temperature: tauT, scratch: ws.sinkhornScratch, parallelism: par)
            }
        }

        timings.teacher = lap()

        // 3. Student.
        let studentBackbone = studentTensors.backbone
        func studentForward(_ a: BackboneActivations, _ px: UnsafePointer<Float>, _ masks: UnsafePointer<Bool>?) {
            if var sd = stochasticDepth, sd.rate > 0 {
                backboneForward(studentBackbone, a, pixels: px, masks: masks, stochasticDepth: &sd, parallelism: par)
                stochasticDepth = sd
            } else {
                backboneForward(studentBackbone, a, pixels: px, masks: masks, parallelism: par)
            }
        }
        batch.globalCrops.withUnsafeBufferPointer { px in
            batch.masks.withUnsafeBufferPointer { m in studentForward(ga, px.baseAddress!, m.baseAddress!) }
        }
        if let la {
            batch.localCrops.withUnsafeBufferPointer { px in studentForward(la, px.baseAddress!, nil) }
            for j in 0..<(nl * b) { (dinoIn + j * d).update(from: la.normOut + j * la.tokens * d, count: d) }
        }
        for i in 0..<(2 * b) { (dinoIn + (nl * b + i) * d).update(from: ga.normOut + i * tg * d, count: d) }
        let studentIbotIn = ibotHead.acts.input.pointer + (shared ? (nl * b + 2 * b) * d : 0)
        for j in 0..<ibotRows { (studentIbotIn + j * d).update(from: ga.normOut + ws.maskRows[j] * d, count: d) }
        let studentDinoHead = studentTensors.dinoHead
        dinoHeadForward(studentDinoHead, dinoHead.acts, rows: dinoRowsStudent, parallelism: par)
        let studentIbotHead = studentTensors.ibotHead
        if let h = studentIbotHead, ibotRows > 0 {
            dinoHeadForward(h, ibotHead.acts, rows: ibotRows, parallelism: par)
        }

        timings.studentForward = lap()

        // 4. Losses and their gradients with respect to the head outputs.
        let logits = UnsafePointer(dinoHead.acts.logits.pointer)
        let dlogits = dinoHead.dlogits.pointer
        dlogits.update(repeating: 0, count: dinoRowsStudent * k)
        let local = DINOLoss.localTerm(studentLocal: logits, teacher: ws.dinoTargets.pointer, batch: b, localCrops: nl,
                                       classes: k, studentTemperature: tauS, weight: c.loss.dinoWeight,
                                       dlocal: dlogits, parallelism: par)
        var global = 0.0, koleo = 0.0, ibot = 0.0
        ws.dcls.pointer.update(repeating: 0, count: 2 * b * d)
        if doDINO {
            global = DINOLoss.globalTerm(studentGlobal: logits + nl * b * k, teacher: ws.dinoTargets.pointer, batch: b,
                                         localCrops: nl, classes: k, studentTemperature: tauS, weight: c.loss.dinoWeight,
                                         dglobal: dlogits + nl * b * k, parallelism: par)
            if doKoLeo {
                for i in 0..<(2 * b) { (ws.cls.pointer + i * d).update(from: ga.normOut + i * tg * d, count: d) }
                for crop in 0..<2 {
                    koleo += KoLeoLoss.term(x: ws.cls.pointer + crop * b * d, rows: b, dim: d, weight: c.loss.koleoWeight,
                                            dx: ws.dcls.pointer + crop * b * d, scratch: ws.koleoScratch.pointer)
                }
            }
        }
        if doIBOT {
            let studentPatches = UnsafePointer(ibotHead.acts.logits.pointer + (shared ? (nl * b + 2 * b) * k : 0))
            let dpatches = shared ? dlogits + (nl * b + 2 * b) * k : ibotHead.dlogits.pointer
            if !shared { dpatches.update(repeating: 0, count: ibotRows * ki) }
            ibot = iBOTPatchLoss.term(student: studentPatches, teacher: ws.ibotTargets.pointer, weights: ws.maskWeights.pointer,
                                      maskedRows: ibotRows, crops: 2 * b, classes: ki, studentTemperature: tauS,
                                      weight: c.loss.ibotWeight, dstudent: dpatches, parallelism: par)
        }

        timings.losses = lap()

        // 5. Backward: heads, then the gradient of every x_norm row a loss read, then the backbone.
        let dinoGrads = gradientTensors.dinoHead
        dinoHeadBackward(studentDinoHead, dinoGrads, dinoHead.acts, dinoHead.scratch, dlogits: dlogits,
                         dinput: dinoHead.dinput.pointer, rows: dinoRowsStudent, parallelism: par)
        if let h = studentIbotHead, let g = gradientTensors.ibotHead, ibotRows > 0 {
            dinoHeadBackward(h, g, ibotHead.acts, ibotHead.scratch, dlogits: ibotHead.dlogits.pointer,
                             dinput: ibotHead.dinput.pointer, rows: ibotRows, parallelism: par)
        }
        let dGlobal = ws.dGlobal.pointer, dIn = dinoHead.dinput.pointer
        dGlobal.update(repeating: 0, count: ga.rows * d)
        for i in 0..<(2 * b) {
            // The head's gradient plus KoLeo's, both at the global cls rows.
            let dst = dGlobal + i * tg * d, head = dIn + (nl * b + i) * d, koleoGrad = ws.dcls.pointer + i * d
            for e in 0..<d { dst[e] = head[e] + koleoGrad[e] }
        }
        let dMasked = ibotHead.dinput.pointer + (shared ? (nl * b + 2 * b) * d : 0)
        for j in 0..<ibotRows {
            let dst = dGlobal + ws.maskRows[j] * d, src = dMasked + j * d
            for e in 0..<d { dst[e] += src[e] }
        }
        let backboneGrads = gradientTensors.backbone
        backboneBackward(studentBackbone, backboneGrads, ga, ws.scratch, dnormOut: dGlobal, parallelism: par)
        if let la {
            let dLocal = ws.dLocal.pointer
            dLocal.update(repeating: 0, count: la.rows * d)
            for j in 0..<(nl * b) { (dLocal + j * la.tokens * d).update(from: dIn + j * d, count: d) }
            backboneBackward(studentBackbone, backboneGrads, la, ws.scratch, dnormOut: dLocal, parallelism: par)
        }

        timings.backward = lap()
        let w = c.loss
        let terms = (w.dinoWeight * local, w.dinoWeight * global, w.koleoWeight * koleo, w.ibotWeight * ibot)
        return LossTerms(dinoLocal: terms.0, dinoGlobal: terms.1, koleo: terms.2, ibot: terms.3,
                         total: terms.0 + terms.1 + terms.2 + terms.3)
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
