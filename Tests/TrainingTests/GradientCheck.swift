import Kernels
import TensorStore
import XCTest

/// Central finite differences against an analytic gradient, for layers that compute in Float.
///
/// The scalar checked is L = Σ r ⊙ forward(…) with a fixed seeded r (so every output element
/// matters with a different weight), accumulated in Double. Float rounding in the forward limits
/// how small the step may be; with inputs of order one, a step of 1e-2 keeps the truncation error
/// (∝ step², and ∝ step⁴ after Richardson extrapolation) and the rounding error (∝ ulp/step)
/// both small against the gradient's scale.
enum GradientCheck {
    /// `count` seeded values in [-scale, scale).
    static func values(_ seed: UInt32, _ count: Int, scale: Float = 1) -> [Float] {
        SyntheticInput.values(seed: seed, count: count).map { $0 * scale / 2 }
    }

    /// Σ r·y in Double.
    static func dot(_ r: [Float], _ y: UnsafePointer<Float>) -> Double {
        var s = 0.0
        for i in 0..<r.count { s += Double(r[i]) * Double(y[i]) }
        return s
    }

    static func dot(_ r: [Float], _ y: [Float]) -> Double {
        y.withUnsafeBufferPointer { dot(r, $0.baseAddress!) }
    }

    /// Compares `analytic` with the finite differences of `loss` along up to `samples` coordinates
    /// of `variable` (all of them when it is small), perturbing a copy.
    static func check(_ label: String, variable: [Float], analytic: [Float], step: Float = 1e-2,
                      relativeTolerance: Double = 2e-3, samples: Int = 64,
                      file: StaticString = #filePath, line: UInt = #line, loss: ([Float]) -> Double) {
        XCTAssertEqual(variable.count, analytic.count, "\(label): gradient size", file: file, line: line)
        let scale = Swift.max(analytic.map { Double(abs($0)) }.max() ?? 0, 1e-3)
        var indices = Array(0..<variable.count)
        if indices.count > samples {
            var g = SyntheticInput(seed: label.utf8.reduce(UInt32(2166136261)) { ($0 ^ UInt32($1)) &* 16777619 })
            indices.shuffle(using: &g)
            indices = Array(indices.prefix(samples))
        }
        var worst = 0.0, worstIndex = -1
        var x = variable
        // Central differences at h and h/2, combined by Richardson extrapolation,
        // (4·D(h/2) − D(h)) / 3, which cancels the h² term of the truncation error.
        func central(_ i: Int, _ h: Float) -> Double {
            let orig = x[i]
            x[i] = orig + h
            let up = loss(x)
            x[i] = orig - h
            let down = loss(x)
            x[i] = orig
            return (up - down) / (Double(orig + h) - Double(orig - h))
        }
        for i in indices {
            let fd = (4 * central(i, step / 2) - central(i, step)) / 3
            let err = abs(fd - Double(analytic[i])) / scale
            if err > worst { worst = err; worstIndex = i }
        }
        XCTAssertLessThanOrEqual(worst, relativeTolerance,
                                 "\(label): worst |fd − analytic| / max|grad| = \(worst) at \(worstIndex) (max |grad| \(scale))",
                                 file: file, line: line)
    }
}

extension Array where Element == Float {
    /// Calls `body` with a mutable pointer to a copy (inputs for kernels that take pointers).
    func withBuffer<R>(_ body: (UnsafeMutablePointer<Float>) -> R) -> R {
        var copy = self
        return copy.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
    }
}
