import CKernels

/// GELU's backward over `count` elements on the calling thread: dinp = dout · (Φ(x) + x·φ(x)),
/// PyTorch's `gelu_backward` (approximate='none'), Φ the normal CDF and φ its density. The SIMD
/// paths evaluate erf and exp as `geluForward` does; `dinp` may equal `dout`. Callers split long
/// arrays across threads themselves.
@inline(__always)
public func geluGradient(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                         count: Int) {
    dk_gelu_backward(dinp, dout, inp, count)
}
