import CKernels
import Foundation

/// Exact GELU, `nn.GELU()` (approximate='none'): 0.5 · x · (1 + erf(x / √2)), in place or not
/// (`out` may equal `inp`). The SIMD paths evaluate erf through a vectorised erfc (relative error
/// below 1.2e-7, see CKernels/simd_body.h), the scalar path through the C library's erff; both
/// keep PyTorch's order of operations. The tanh approximation would miss by ~1e-3.
public func geluForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int,
                        parallelism: Parallelism = .serial) {
    let p = count < 1 << 15 ? Parallelism.serial : parallelism
    parallelFor(count, p) { range in
        dk_gelu(out + range.lowerBound, inp + range.lowerBound, range.count)
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
        dk_silu(out + range.lowerBound, inp + range.lowerBound, range.count)
    }
}

/// SwiGLU gate of the ViT-g FFN (`SwiGLUFFN.forward`): u = (rows, 2·hidden) is split into halves
/// x1 = u[:, :hidden], x2 = u[:, hidden:]; out (rows, hidden) = silu(x1) · x2 with
/// `silu` above.
public func swigluForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, rows: Int, hidden: Int,
                          parallelism: Parallelism = .serial) {
    let p = rows * hidden < 1 << 15 ? Parallelism.serial : parallelism
    parallelFor(rows, p) { range in
        dk_swiglu(out + range.lowerBound * hidden, inp + range.lowerBound * 2 * hidden, Int32(range.count), Int32(hidden))
    }
}
