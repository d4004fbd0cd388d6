import Foundation
import Kernels

// Exact GELU, 0.5·x·(1 + erf(x/√2)). The training forward is Kernels' `geluForward` into a
// buffer of its own (the pre-activation is kept for the backward).

/// Backward of `geluForward` (PyTorch's `gelu_backward`, approximate='none'):
/// dinp = dout · (Φ(x) + x·φ(x)), Φ the normal CDF, φ its density. `dinp` may equal `dout`.
public func geluBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                         count: Int, parallelism: Parallelism) {
    let invSqrt2 = Float(0.5.squareRoot())
    let invSqrt2Pi = Float(1 / (2 * Double.pi).squareRoot())
    parallelFor(count, pieces(count, work: count * 8, minimum: 1024, parallelism)) { range in
        for i in range {
            let x = inp[i]
            let cdf = 0.5 * (1 + erf(x * invSqrt2))
            let pdf = exp(-0.5 * x * x) * invSqrt2Pi
            dinp[i] = dout[i] * (cdf + x * pdf)
        }
    }
}
