import Kernels

// Exact GELU, 0.5·x·(1 + erf(x/√2)). The training forward is Kernels' `geluForward` into a
// buffer of its own (the pre-activation is kept for the backward).

/// Backward of `geluForward` (PyTorch's `gelu_backward`, approximate='none'):
/// dinp = dout · (Φ(x) + x·φ(x)), Φ the normal CDF, φ its density. `dinp` may equal `dout`.
public func geluBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                         count: Int, parallelism: Parallelism) {
    parallelFor(count, pieces(count, work: count * 8, minimum: 4096, parallelism)) { range in
        geluGradient(dinp: dinp + range.lowerBound, dout: dout + range.lowerBound, inp: inp + range.lowerBound,
                     count: range.count)
    }
}
