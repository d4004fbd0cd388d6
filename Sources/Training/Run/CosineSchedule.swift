import Foundation

/// `dinov2.utils.utils.CosineScheduler`: `freezeIters` zeros, then a linear warm-up from
/// `startWarmupValue` to `baseValue` over `warmupIters` (numpy `linspace`, both ends included),
/// then a half cosine from `baseValue` down to `finalValue` over the remaining iterations;
/// indices past the end give `finalValue`.
public struct CosineSchedule: Sendable, Equatable {
    public let values: [Double]
    public let finalValue: Double

    public init(base: Double, final: Double, totalIters: Int, warmupIters: Int = 0, startWarmupValue: Double = 0,
                freezeIters: Int = 0) throws {
        guard totalIters >= 0, warmupIters >= 0, freezeIters >= 0, warmupIters + freezeIters <= totalIters else {
            throw TrainingError.config(file: "schedule", message: "warm-up \(warmupIters) + freeze \(freezeIters) iterations exceed the \(totalIters) total")
        }
        var v = [Double](repeating: 0, count: freezeIters)
        v.reserveCapacity(totalIters)
        v += Self.linspace(startWarmupValue, base, warmupIters)
        let n = totalIters - warmupIters - freezeIters
        for i in 0..<n {
            v.append(final + 0.5 * (base - final) * (1 + cos(Double.pi * Double(i) / Double(n))))
        }
        values = v
        finalValue = final
    }

    public subscript(iteration: Int) -> Double {
        iteration >= 0 && iteration < values.count ? values[iteration] : finalValue
    }

    /// numpy.linspace(start, stop, n): start + i·step, the last value exactly `stop`.
    static func linspace(_ start: Double, _ stop: Double, _ n: Int) -> [Double] {
        if n <= 0 { return [] }
        if n == 1 { return [start] }
        let step = (stop - start) / Double(n - 1)
        var out = (0..<n).map { start + Double($0) * step }
        out[n - 1] = stop
        return out
    }
}
