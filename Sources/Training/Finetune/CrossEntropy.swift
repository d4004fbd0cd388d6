import Foundation

/// `nn.CrossEntropyLoss()` (mean reduction, no label smoothing, no class weights) over a batch of
/// logits, with its gradient: dL/dlogits = (softmax(logits) − onehot(label)) / rows.
public enum CrossEntropy {
    /// What one pass over a batch gives: the mean loss and how many rows the arg-max got right.
    public struct Result: Sendable, Equatable {
        public var loss: Double
        public var correct: Int
    }

    /// `logits` (rows, classes) row-major; `labels` one class index per row, each checked by the
    /// caller to be in `0..<classes`. `dlogits` (rows, classes) is overwritten when given.
    /// The log-sum-exp is taken per row from its maximum, as `log_softmax` does; the mean is
    /// accumulated in Double.
    public static func evaluate(logits: UnsafePointer<Float>, labels: UnsafePointer<Int>, rows: Int, classes: Int,
                                dlogits: UnsafeMutablePointer<Float>?) -> Result {
        guard rows > 0, classes > 0 else { return Result(loss: 0, correct: 0) }
        var total = 0.0, correct = 0
        let scale = 1 / Float(rows)
        for r in 0..<rows {
            let x = logits + r * classes, y = labels[r]
            var m = x[0], best = 0
            for j in 1..<classes where x[j] > m {
                m = x[j]
                best = j
            }
            if best == y { correct += 1 }
            var s: Float = 0
            for j in 0..<classes { s += Foundation.exp(x[j] - m) }
            let lse = m + Foundation.log(s)
            total += Double(lse - x[y])
            if let dlogits {
                let g = dlogits + r * classes
                let inv = 1 / s
                for j in 0..<classes { g[j] = Foundation.exp(x[j] - m) * inv * scale }
                g[y] -= scale
            }
        }
        return Result(loss: total / Double(rows), correct: correct)
    }

    /// Arg-max class of each row (the first on ties, as `torch.argmax`).
    public static func predictions(logits: UnsafePointer<Float>, rows: Int, classes: Int) -> [Int] {
        (0..<rows).map { r in
            let x = logits + r * classes
            var best = 0
            for j in 1..<Swift.max(classes, 1) where x[j] > x[best] { best = j }
            return best
        }
    }
}
