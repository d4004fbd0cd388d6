import Foundation
import Kernels

// SwiGLU gate of DINOv2's SwiGLU FFN: u = w12(x) split into halves x1 | x2, y = silu(x1)·x2, then
// w3. The training forward is Kernels' `swigluForward` into its own buffer; `u` is kept.

/// Backward of `swigluForward`: with σ = sigmoid(x1),
/// dx1 = dout · x2 · σ·(1 + x1·(1 − σ)),  dx2 = dout · silu(x1).
/// `dinp` is (rows, 2·hidden), overwritten.
public func swigluBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                           rows: Int, hidden: Int, parallelism: Parallelism) {
    parallelFor(rows, pieces(rows, work: rows * hidden * 8, minimum: 8, parallelism)) { range in
        for r in range {
            let u = inp + r * 2 * hidden, du = dinp + r * 2 * hidden, g = dout + r * hidden
            for i in 0..<hidden {
                let x1 = u[i], x2 = u[hidden + i]
                let sig = 1 / (1 + exp(-x1))
                du[i] = g[i] * x2 * (sig * (1 + x1 * (1 - sig)))
                du[hidden + i] = g[i] * (x1 * sig)
            }
        }
    }
}
