/// The patch embedding's input side: a stride-p, p×p, no-padding Conv2d is a GEMM over unfolded
/// patches. Writes, for each image b and patch n = r·w + c (row-major over the h×w patch grid),
/// one row of channels·p·p values in (channel, ky, kx) order — the order of the Conv2d weight
/// flattened to (D, channels·p·p). Input is (batch, channels, height, width), C order, height
/// and width multiples of p (checked by the caller).
public func patchUnfoldForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                               batch: Int, channels: Int, height: Int, width: Int, patch p: Int,
                               parallelism: Parallelism = .serial) {
    let h = height / p, w = width / p
    let rowLength = channels * p * p
    parallelFor(batch * h, parallelism) { range in
        for bi in range {
            let b = bi / h, r = bi % h
            for c in 0..<w {
                let dst = out + ((b * h + r) * w + c) * rowLength
                for ch in 0..<channels {
                    let plane = inp + (b * channels + ch) * height * width
                    for ky in 0..<p {
                        // An element loop, not update(from:): a 14-float memcpy call per row costs
                        // more than the copy.
                        let src = plane + (r * p + ky) * width + c * p, d = dst + (ch * p + ky) * p
                        for kx in 0..<p { d[kx] = src[kx] }
                    }
                }
            }
        }
    }
}
