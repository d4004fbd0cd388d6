import Kernels

// DINOv3's `LinearKMaskedBias` (dinov3/layers/attention.py): F.linear(x, W, bias · bias_mask),
// the mask a buffer (1 on q and v, 0 on the key third). The layer is the ordinary linear on the
// masked bias; these two carry the bias through the mask.

/// `out` (count) = bias · mask.
public func maskedBiasForward(out: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, mask: UnsafePointer<Float>,
                              count: Int) {
    for j in 0..<count { out[j] = bias[j] * mask[j] }
}

/// `dbias` (count) += dmasked · mask: where the mask is 0 the bias gets no gradient, so an
/// optimiser without weight decay on biases leaves the stored values there as they are.
public func maskedBiasBackward(dbias: UnsafeMutablePointer<Float>, dmasked: UnsafePointer<Float>,
                               mask: UnsafePointer<Float>, count: Int) {
    for j in 0..<count { dbias[j] += dmasked[j] * mask[j] }
}
