import Kernels

// PatchEmbed: Conv2d(C, D, kernel p, stride p) as a GEMM over unfolded patches
// (patch_embed.py; spec §1.4). The unfolded patches are kept for the weight gradient.

/// Forward: `patches` (batch·h·w, C·p·p) ← unfold(pixels); `out` (batch·h·w, D) ← patches·Wᵀ + b.
public func patchEmbedForward(out: UnsafeMutablePointer<Float>, patches: UnsafeMutablePointer<Float>,
                              pixels: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                              batch: Int, channels: Int, height: Int, width: Int, patch p: Int, dim: Int,
                              parallelism: Parallelism) {
    let rows = batch * (height / p) * (width / p)
    patchUnfoldForward(out: patches, inp: pixels, batch: batch, channels: channels, height: height, width: width,
                       patch: p, parallelism: parallelism)
    linearForward(out: out, inp: patches, weight: weight, bias: bias, rows: rows, inFeatures: channels * p * p,
                  outFeatures: dim, parallelism: parallelism)
}

/// Backward: `dweight` (D, C·p·p) += doutᵀ·patches, `dbias` += Σ dout. Pixels take no gradient.
public func patchEmbedBackward(dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>,
                               dout: UnsafePointer<Float>, patches: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                               rows: Int, unfoldWidth: Int, dim: Int, parallelism: Parallelism) {
    linearBackward(dinp: nil, dweight: dweight, dbias: dbias, dout: dout, inp: patches, weight: weight, rows: rows,
                   inFeatures: unfoldWidth, outFeatures: dim, parallelism: parallelism)
}
