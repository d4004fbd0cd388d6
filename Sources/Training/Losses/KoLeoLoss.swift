import Foundation
import Kernels

/// The KoLeo regulariser (koleo_loss.py; spec §3.5) on the student backbone's global cls tokens,
/// one global crop (B rows) at a time:
///   x̂_b = x_b / max(‖x_b‖, 1e-8),  nn(b) = argmax_{b′≠b} ⟨x̂_b, x̂_b′⟩ (first index on ties),
///   d_b = ‖x̂_b − x̂_nn(b) + 1e-8‖   (PairwiseDistance adds eps to the difference),
///   KoLeo = −mean_b log(d_b + 1e-8).
/// The nearest neighbour is a discrete choice and carries no gradient; the distance does, into
/// both x̂_b and x̂_nn(b).
public enum KoLeoLoss {
    static let eps: Float = 1e-8

    /// Scratch floats `term` needs for B rows of width D.
    public static func scratchCount(rows: Int, dim: Int) -> Int { 2 * rows * dim + rows }

    /// KoLeo of `rows` rows of `x` (rows, D); adds `weight` · its gradient into `dx` when given.
    public static func term(x: UnsafePointer<Float>, rows b: Int, dim d: Int, weight: Double,
                            dx: UnsafeMutablePointer<Float>?, scratch: UnsafeMutablePointer<Float>) -> Double {
        guard b > 0, d > 0 else { return 0 }
        let xn = scratch, dxn = scratch + b * d, norms = scratch + 2 * b * d
        for r in 0..<b {
            var s = 0.0
            for i in 0..<d { s += Double(x[r * d + i]) * Double(x[r * d + i]) }
            norms[r] = Swift.max(Float(s.squareRoot()), eps)
            for i in 0..<d { xn[r * d + i] = x[r * d + i] / norms[r] }
        }
        dxn.update(repeating: 0, count: b * d)
        var total = 0.0
        for r in 0..<b {
            // Gram row with the diagonal set to −1, then its (first) maximum.
            var best = -Float.infinity, nn = 0
            for j in 0..<b {
                var dot: Float = -1
                if j != r {
                    var s = 0.0
                    for i in 0..<d { s += Double(xn[r * d + i]) * Double(xn[j * d + i]) }
                    dot = Float(s)
                }
                if dot > best { best = dot; nn = j }
            }
            var sq = 0.0
            for i in 0..<d {
                let diff = Double(xn[r * d + i] - xn[nn * d + i] + eps)
                sq += diff * diff
            }
            let dist = sq.squareRoot()
            total -= Foundation.log(dist + Double(eps))
            guard dx != nil, dist > 0 else { continue }
            // d(−log(d + eps)/B)/d diff = −diff / (B · d · (d + eps)).
            let g = -weight / (Double(b) * (dist + Double(eps)) * dist)
            for i in 0..<d {
                let diff = Double(xn[r * d + i] - xn[nn * d + i] + eps)
                dxn[r * d + i] += Float(g * diff)
                dxn[nn * d + i] -= Float(g * diff)
            }
        }
        if let dx {
            // Through the normalisation: dx = (dx̂ − x̂ (dx̂·x̂)) / ‖x‖ (the clamp holds ‖x‖ fixed below eps).
            for r in 0..<b {
                let clamped = norms[r] <= eps
                var dot = 0.0
                for i in 0..<d { dot += Double(dxn[r * d + i]) * Double(xn[r * d + i]) }
                for i in 0..<d {
                    let g = clamped ? Double(dxn[r * d + i]) : Double(dxn[r * d + i]) - Double(xn[r * d + i]) * dot
                    dx[r * d + i] += Float(g / Double(norms[r]))
                }
            }
        }
        return total / Double(b)
    }
}
