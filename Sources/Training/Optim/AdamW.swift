import Foundation
import Kernels

/// The hyperparameters of one optimiser step (train.py `apply_optim_scheduler`: the schedules'
/// values at this iteration).
public struct StepHyperparameters: Sendable, Equatable {
    public var lr: Double
    public var lastLayerLR: Double
    public var weightDecay: Double
    public var teacherMomentum: Double
    public var teacherTemperature: Double

    public init(lr: Double, lastLayerLR: Double, weightDecay: Double, teacherMomentum: Double, teacherTemperature: Double) {
        self.lr = lr
        self.lastLayerLR = lastLayerLR
        self.weightDecay = weightDecay
        self.teacherMomentum = teacherMomentum
        self.teacherTemperature = teacherTemperature
    }
}

/// `torch.optim.AdamW` (foreach implementation, no amsgrad) over parameter blocks, each tensor
/// with its DINOv2 parameter group (spec §4.4):
///   p ← p · (1 − lr·wd)
///   m ← lerp(m, g, 1 − β1);  v ← β2·v + (1 − β2)·g²
///   p ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + eps)
/// Scalars are formed in Double (Python floats) and applied in Float as torch does. The step
/// counter advances for every tensor every step, also while a group's lr is 0.
public final class AdamW {
    public let beta1: Double, beta2: Double, eps: Double
    public internal(set) var stepCount = 0
    /// First and second moments, one pair of blocks per module.
    public let moments: [(m: ParameterBlock, v: ParameterBlock)]

    public init(modules: [ParameterLayout], beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        moments = modules.map { (ParameterBlock(layout: $0), ParameterBlock(layout: $0)) }
    }

    /// One step over every module: `params[i]` updated from `grads[i]` with `groups[i]` (one entry
    /// per tensor of the module's layout).
    public func step(params: [ParameterBlock], grads: [ParameterBlock], groups: [[ParameterGroup]],
                     hyper h: StepHyperparameters, parallelism: Parallelism) {
        stepCount += 1
        let t = Double(stepCount)
        let bc1 = 1 - Foundation.pow(beta1, t), bc2Sqrt = (1 - Foundation.pow(beta2, t)).squareRoot()
        let b2 = Float(beta2), w1 = Float(1 - beta1), w2 = Float(1 - beta2)
        let epsF = Float(eps), bc2F = Float(bc2Sqrt)
        for (mi, p) in params.enumerated() {
            let g = grads[mi], (m, v) = moments[mi]
            for (si, slot) in p.layout.slots.enumerated() {
                let group = groups[mi][si]
                let lr = (group.isLastLayer ? h.lastLayerLR : h.lr) * group.lrMultiplier
                let decay = Float(1 - lr * h.weightDecay * group.wdMultiplier)
                let stepSize = Float(-(lr / bc1))
                let pp = p.base + slot.offset, gp = g.base + slot.offset
                let mp = m.base + slot.offset, vp = v.base + slot.offset
                let n = slot.count
                parallelFor(n, pieces(n, work: n * 16, minimum: 4096, parallelism)) { range in
                    for i in range {
                        let gi = gp[i]
                        pp[i] = pp[i] * decay
                        // torch.lerp with weight < 0.5: start + weight · (end − start).
                        mp[i] = mp[i] + w1 * (gi - mp[i])
                        vp[i] = vp[i] * b2 + w2 * gi * gi
                        let denom = vp[i].squareRoot() / bc2F + epsF
                        pp[i] = pp[i] + stepSize * (mp[i] / denom)
                    }
                }
            }
        }
    }
}
