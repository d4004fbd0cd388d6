import Kernels

/// `torch.optim.SGD` (dampening 0, no Nesterov, the single-tensor path) over parameter blocks,
/// each tensor with a `ParameterGroup` scaling the step's lr and weight decay:
///   g ← g + wd·p;  buf ← g on the first step, else momentum·buf + g;  p ← p − lr·buf
/// (buf = g when momentum is 0). The gradients are left untouched.
public final class SGD {
    public let momentum: Double
    public private(set) var stepCount = 0
    /// Momentum buffers, one per module (unused when momentum is 0).
    public let buffers: [ParameterBlock]

    public init(modules: [ParameterLayout], momentum: Double) {
        self.momentum = momentum
        buffers = modules.map { ParameterBlock(layout: $0) }
    }

    public func step(params: [ParameterBlock], grads: [ParameterBlock], groups: [[ParameterGroup]], lr: Double,
                     weightDecay: Double) {
        let first = stepCount == 0
        stepCount += 1
        let mu = Float(momentum)
        for (mi, p) in params.enumerated() {
            let g = grads[mi], b = buffers[mi]
            for (si, slot) in p.layout.slots.enumerated() {
                let group = groups[mi][si]
                let alpha = Float(-(lr * group.lrMultiplier)), wd = Float(weightDecay * group.wdMultiplier)
                let pp = p.base + slot.offset, gp = g.base + slot.offset, bp = b.base + slot.offset
                for i in 0..<slot.count {
                    var d = gp[i]
                    if wd != 0 { d = d + wd * pp[i] }
                    if mu != 0 {
                        d = first ? d : bp[i] * mu + d
                        bp[i] = d
                    }
                    pp[i] = pp[i] + alpha * d
                }
            }
        }
    }
}
