import Foundation

/// Exact GELU, `nn.GELU()` (approximate='none'): 0.5 · x · (1 + erf(x / √2)), in place or not
/// (`out` may equal `inp`). Uses the C library's erff (correctly rounded to within an ulp, as
/// Sleef's erf that PyTorch vectorises with); the tanh approximation would miss by ~1e-3.
public func geluForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int,
                        parallelism: Parallelism = .serial) {
    let p = count < 1 << 15 ? Parallelism.serial : parallelism
    parallelFor(count, p) { range in
        for i in range {
            let x = inp[i]
            // PyTorch's order: (x · 0.5) · (1 + erf(x · M_SQRT1_2)).
            out[i] = x * 0.5 * (1 + erf(x * Float(0.5.squareRoot())))
        }
    }
}

/// SiLU, `F.silu`: z / (1 + exp(−z)), written as ATen's CPU kernel writes it.
@inline(__always)
public func silu(_ z: Float) -> Float { z / (1 + exp(-z)) }

/// `F.silu` elementwise (`out` may equal `inp`).
public func siluForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int,
                        parallelism: Parallelism = .serial) {
    let p = count < 1 << 15 ? Parallelism.serial : parallelism
    parallelFor(count, p) { range in
        for i in range { out[i] = silu(inp[i]) }
    }
}

/// SwiGLU gate of the ViT-g FFN (`SwiGLUFFN.forward`): u = (rows, 2·hidden) is split into halves
/// x1 = u[:, :hidden], x2 = u[:, hidden:]; out (rows, hidden) = silu(x1) · x2 with
/// `silu` above.
public func swigluForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, rows: Int, hidden: Int,
                          parallelism: Parallelism = .serial) {
    let p = rows * hidden < 1 << 15 ? Parallelism.serial : parallelism
    parallelFor(rows, p) { range in
        for r in range {
            let u = inp + r * 2 * hidden, y = out + r * hidden
            for i in 0..<hidden {
                y[i] = silu(u[i]) * u[hidden + i]
            }
        }
    }
}
