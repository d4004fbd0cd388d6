import Foundation
import Kernels

/// The teacher's centering with the official lazy update (DINOLoss / iBOTPatchLoss
/// `softmax_center_teacher`, `update_center`, `apply_center_update`; spec §3.1).
///
/// A step first applies the statistic the previous step queued, then uses the center for
/// softmax((t − c) / τ_t), then queues its own batch statistic. So the center a step uses
/// includes statistics up to the step before, and after N steps the state holds the center the
/// last step used, with the last statistic still queued.
public final class TeacherCenter {
    public let classes: Int
    public let momentum: Float
    /// The center (K), fp32 as the official buffer.
    public private(set) var values: [Float]
    private var queued: [Float]
    private var hasQueued = false
    private var sums: [Double]

    public init(values: [Float], momentum: Float) {
        classes = values.count
        self.momentum = momentum
        self.values = values
        queued = [Float](repeating: 0, count: values.count)
        sums = [Double](repeating: 0, count: values.count)
    }

    /// Whether a statistic is waiting for the next step.
    public var hasQueuedUpdate: Bool { hasQueued }

    /// `apply_center_update`: c ← c·m + stat·(1 − m) if a statistic is queued.
    public func applyQueuedUpdate() {
        guard hasQueued else { return }
        let m = momentum, om = 1 - momentum
        for i in 0..<classes { values[i] = values[i] * m + queued[i] * om }
        hasQueued = false
    }

    /// softmax((t − c) / τ) of `rows` teacher rows into `out`, after applying any queued update.
    public func softmaxCentered(out: UnsafeMutablePointer<Float>, teacher: UnsafePointer<Float>, rows: Int,
                                temperature tau: Float, parallelism: Parallelism = .serial) {
        applyQueuedUpdate()
        let k = classes
        values.withUnsafeBufferPointer { c in
            let c = c.baseAddress!
            parallelFor(rows, pieces(rows, work: rows * k * 8, minimum: 2, parallelism)) { range in
                for r in range {
                    let t = teacher + r * k, o = out + r * k
                    for i in 0..<k { o[i] = (t[i] - c[i]) / tau }
                    softmaxRowInPlace(o, cols: k)
                }
            }
        }
    }

    /// Queues the batch mean of `rows` teacher rows (`reduce_center_update`: sum over rows divided
    /// by the row count; one process, so no all-reduce).
    public func queueBatchMean(_ teacher: UnsafePointer<Float>, rows: Int) {
        guard rows > 0 else { return }
        let k = classes
        for i in 0..<k { sums[i] = 0 }
        for r in 0..<rows {
            let t = teacher + r * k
            for i in 0..<k { sums[i] += Double(t[i]) }
        }
        for i in 0..<k { queued[i] = Float(sums[i]) / Float(rows) }
        hasQueued = true
    }
}

/// Softmax of one row in place: exp(x − max) in Float, the sum in Double.
func softmaxRowInPlace(_ x: UnsafeMutablePointer<Float>, cols: Int) {
    var m = -Float.infinity
    for i in 0..<cols where x[i] > m { m = x[i] }
    var sum = 0.0
    for i in 0..<cols {
        let e = Foundation.exp(x[i] - m)
        x[i] = e
        sum += Double(e)
    }
    let inv = Float(1 / sum)
    for i in 0..<cols { x[i] *= inv }
}
