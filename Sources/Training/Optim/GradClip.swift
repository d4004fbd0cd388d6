import Foundation

/// `torch.nn.utils.clip_grad_norm_(module.parameters(), maxNorm)` on one module's gradients
/// (train.py clips each student module — backbone, dino head, ibot head — separately; spec
/// §4.4): total = ‖(‖g_1‖, …, ‖g_n‖)‖₂ over the module's tensors; every gradient is multiplied by
/// min(1, maxNorm / (total + 1e-6)). Returns the total norm (before clipping).
@discardableResult
public func clipGradientNorm(_ grads: ParameterBlock, maxNorm: Double) -> Double {
    var total = 0.0
    for s in grads.layout.slots {
        var sq = 0.0
        let g = grads.base + s.offset
        for i in 0..<s.count { sq += Double(g[i]) * Double(g[i]) }
        // torch rounds each tensor's norm to Float before the norm of norms.
        let n = Double(Float(sq.squareRoot()))
        total += n * n
    }
    let norm = Float(total.squareRoot())
    let coef = Float(maxNorm) / (norm + 1e-6)
    if coef < 1 {
        let g = grads.base
        for i in 0..<grads.count { g[i] *= coef }
    }
    return Double(norm)
}
