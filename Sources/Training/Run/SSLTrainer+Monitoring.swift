import Foundation

/// Collapse signals read after a step (dinov2 #204: a collapsing run shows the teacher's output
/// entropy going to 0 — one prototype — or to log K — uniform).
extension SSLTrainer {
    /// Mean over the last step's 2B teacher rows of the entropy (nats) of the DINO targets: the
    /// centred, sharpened teacher softmax (or Sinkhorn-Knopp's assignment). nil before a step.
    public var lastTeacherEntropy: Double? {
        guard let ws = workspace else { return nil }
        let rows = 2 * ws.key.batch, k = model.config.dinoHead.outDim
        guard ws.dinoTargets.count >= rows * k, rows > 0 else { return nil }
        let p = ws.dinoTargets.pointer
        var total = 0.0
        for r in 0..<rows {
            var h = 0.0
            let row = p + r * k
            for i in 0..<k where row[i] > 0 {
                let x = Double(row[i])
                h -= x * Foundation.log(x)
            }
            total += h
        }
        return total / Double(rows)
    }

    /// The optimiser's step count, for resuming (AdamW's bias corrections depend on it).
    public func restoreOptimizerStepCount(_ n: Int) { optimizer.stepCount = n }
}

/// Summary of a centre vector: its L2 norm, mean and standard deviation.
public struct CenterStats: Codable, Sendable, Equatable {
    public var norm: Double
    public var mean: Double
    public var std: Double

    public init(_ values: [Float]) {
        let n = Double(Swift.max(values.count, 1))
        var s = 0.0, sq = 0.0
        for v in values {
            s += Double(v)
            sq += Double(v) * Double(v)
        }
        norm = sq.squareRoot()
        mean = s / n
        std = Swift.max(sq / n - mean * mean, 0).squareRoot()
    }
}
