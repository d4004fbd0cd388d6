/// Bicubic resampling with PyTorch's CPU semantics (`F.interpolate(mode="bicubic",
/// align_corners=False)`), in both of its forms:
///
/// - `antialias=False`, ATen `upsample_bicubic2d`: Keys cubic with A = −0.75, four taps per output
///   around `src = scale·(dst + 0.5) − 0.5`, tap indices clamped to the border.
/// - `antialias=True`, ATen `_upsample_bicubic2d_aa` (PIL-style): Keys cubic with a = −0.5
///   stretched by the scale when downsampling, taps outside the input dropped, weights
///   renormalised to sum to one.
///
/// `scale` is what the kernel maps output to input coordinates with: `1/scale_factor` (computed in
/// Double, rounded to Float) when F.interpolate was given `scale_factor`, otherwise in/out in
/// Float. DINOv2's offset-0.1 position-embedding interpolation depends on that difference.
///
/// Both forms are separable with PyTorch's summation order: for each output, the sum over the
/// width taps (innermost) is formed first, then the weighted sum of those over the height taps.
/// Computing the width pass once per input row and then the height pass gives the same float
/// operations in the same order.
///
/// Bit-exactness: ATen's kernels are C++ compiled with FMA contraction (x86-64 builds dispatch
/// to AVX2/AVX-512 copies of UpSampleKernel.cpp), so some multiply-adds in the weight formulas
/// and in the tap sums are fused and others are not, and GCC vectorises the antialiased tap loop
/// as an in-order reduction (unfused products in blocks of four, a fused scalar tail). The
/// formulas below reproduce those roundings exactly (checked bit for bit against torch 2.13 on
/// x86-64); against a PyTorch built without FMA the difference is a few ulp.
public struct ResampleAxis: Sendable, Equatable {
    /// How ATen's compiled loop rounds the tap sum (see the type comment).
    public enum Accumulation: Sendable, Equatable {
        /// `upsample_bicubic2d`, four unrolled taps: s = v1·w1; s = fma(v0, w0, s); then fused.
        case unrolledFour
        /// `_upsample_bicubic2d_aa`: s = v0·w0; taps 1…4⌊(n−1)/4⌋ added unfused; the rest fused.
        case blockedByFour
    }

    public let accumulation: Accumulation
    public let inputSize: Int
    public let outputSize: Int
    /// Taps stored per output (the widest output's count); unused slots have weight 0.
    public let stride: Int
    /// outputSize × stride input indices (always in 0..<inputSize).
    public let indices: [Int]
    /// outputSize × stride weights.
    public let weights: [Float]
    /// Taps each output actually reads.
    public let counts: [Int]
    /// True when the axis is skipped outright (antialiased resize to the same size: ATen's
    /// separable kernel copies such a dimension instead of resampling it).
    public let isCopy: Bool
}

public enum BicubicResize {
    /// Output length F.interpolate derives from a scale factor: floor(input · scale), in Double.
    public static func outputSize(inputSize: Int, scaleFactor: Double) -> Int {
        Int((Double(inputSize) * scaleFactor).rounded(.down))
    }

    /// The coordinate scale ATen uses (`area_pixel_compute_scale`, align_corners=False; its
    /// "output size 1 → scale 0" rule applies to align_corners=True only in current PyTorch).
    public static func coordinateScale(inputSize: Int, outputSize: Int, scaleFactor: Double?) -> Float {
        if let s = scaleFactor, s > 0 { return Float(1.0 / s) }
        return Float(inputSize) / Float(outputSize)
    }

    // Keys cubic convolution, ((A + 2)x − (A + 3))x² + 1 for |x| ≤ 1 and ((Ax − 5A)x + 8A)x − 4A
    // for 1 < |x| < 2, with the fused steps ATen's compiled code has in each context.

    /// `get_cubic_upsample_coefficients`' |x| ≤ 1 branch.
    @inline(__always)
    static func plainCubic1(_ x: Float, _ a: Float) -> Float {
        (-(a + 3)).addingProduct(a + 2, x) * x * x + 1
    }

    /// `get_cubic_upsample_coefficients`' 1 < |x| < 2 branch.
    @inline(__always)
    static func plainCubic2(_ x: Float, _ a: Float) -> Float {
        (8 * a).addingProduct((-5 * a).addingProduct(a, x), x) * x - 4 * a
    }

    /// `aa_filter`'s |x| < 1 branch.
    @inline(__always)
    static func antialiasCubic1(_ x: Float, _ a: Float) -> Float {
        Float(1).addingProduct((-(a + 3)).addingProduct(a + 2, x) * x, x)
    }

    /// `aa_filter`'s 1 ≤ |x| < 2 branch.
    @inline(__always)
    static func antialiasCubic2(_ x: Float, _ a: Float) -> Float {
        (-4 * a).addingProduct((8 * a).addingProduct((-5 * a).addingProduct(a, x), x), x)
    }

    /// One axis of `upsample_bicubic2d` (no antialias): A = −0.75, clamped taps.
    public static func cubicAxis(inputSize: Int, outputSize: Int, scaleFactor: Double? = nil) -> ResampleAxis {
        precondition(inputSize > 0 && outputSize >= 0, "resampling needs a non-empty input axis")
        let scale = coordinateScale(inputSize: inputSize, outputSize: outputSize, scaleFactor: scaleFactor)
        let a: Float = -0.75
        var indices = [Int](repeating: 0, count: outputSize * 4)
        var weights = [Float](repeating: 0, count: outputSize * 4)
        for i in 0..<outputSize {
            // area_pixel_compute_source_index(cubic: true): not clamped at 0; one rounding to
            // Float (what ATen's expression gives with its double constants or a fused multiply-add).
            let src = Float(Double(scale) * (Double(i) + 0.5) - 0.5)
            // guard_index_and_lambda
            let i0 = Swift.min(Int(src.rounded(.down)), inputSize - 1)
            let t = Swift.min(Swift.max(src - Float(i0), 0), 1)
            let x2 = 1 - t
            let w: [Float] = [plainCubic2(t + 1, a), plainCubic1(t, a), plainCubic1(x2, a), plainCubic2(x2 + 1, a)]
            for j in 0..<4 {
                indices[i * 4 + j] = Swift.max(Swift.min(i0 - 1 + j, inputSize - 1), 0)
                weights[i * 4 + j] = w[j]
            }
        }
        return ResampleAxis(accumulation: .unrolledFour, inputSize: inputSize, outputSize: outputSize, stride: 4,
                            indices: indices, weights: weights, counts: [Int](repeating: 4, count: outputSize),
                            isCopy: false)
    }

    /// One axis of `_upsample_bicubic2d_aa`: a = −0.5, support 2·max(scale, 1), renormalised.
    /// The mixed Float/Double arithmetic follows ATen's `_compute_indices_min_size_weights_aa`
    /// for float tensors step by step, so tap ranges agree at the rounding boundaries.
    public static func antialiasedCubicAxis(inputSize: Int, outputSize: Int, scaleFactor: Double? = nil) -> ResampleAxis {
        precondition(inputSize > 0 && outputSize >= 0, "resampling needs a non-empty input axis")
        if inputSize == outputSize {
            return ResampleAxis(accumulation: .blockedByFour, inputSize: inputSize, outputSize: outputSize, stride: 1,
                                indices: Array(0..<outputSize),
                                weights: [Float](repeating: 1, count: outputSize),
                                counts: [Int](repeating: 1, count: outputSize), isCopy: true)
        }
        let scale = coordinateScale(inputSize: inputSize, outputSize: outputSize, scaleFactor: scaleFactor)
        let a: Float = -0.5
        let support: Float = scale >= 1 ? Float(2.0 * Double(scale)) : 2
        let maxTaps = Int(Double(support).rounded(.up)) * 2 + 1
        let invscale: Float = scale >= 1 ? Float(1.0 / Double(scale)) : 1
        func filter(_ v: Float) -> Float {
            let x = abs(v)
            if x < 1 { return antialiasCubic1(x, a) }
            if x < 2 { return antialiasCubic2(x, a) }
            return 0
        }
        var indices = [Int](repeating: 0, count: outputSize * maxTaps)
        var weights = [Float](repeating: 0, count: outputSize * maxTaps)
        var counts = [Int](repeating: 0, count: outputSize)
        for i in 0..<outputSize {
            let center = scale * (Float(i) + 0.5)
            let xmin = Swift.max(Int(Double(center - support) + 0.5), 0)
            let xmax = Swift.min(Int(Double(center + support) + 0.5), inputSize)
            let size = Swift.min(Swift.max(xmax - xmin, 0), maxTaps)
            var total: Float = 0
            for j in 0..<size {
                let arg = Float((Double(Float(j + xmin) - center) + 0.5) * Double(invscale))
                let w = filter(arg)
                weights[i * maxTaps + j] = w
                total += w
            }
            if total != 0 {
                for j in 0..<size { weights[i * maxTaps + j] /= total }
            }
            for j in 0..<maxTaps { indices[i * maxTaps + j] = Swift.min(xmin + Swift.min(j, Swift.max(size - 1, 0)), inputSize - 1) }
            counts[i] = size
        }
        return ResampleAxis(accumulation: .blockedByFour, inputSize: inputSize, outputSize: outputSize, stride: maxTaps,
                            indices: indices, weights: weights, counts: counts, isCopy: false)
    }

    public static func axis(inputSize: Int, outputSize: Int, scaleFactor: Double? = nil, antialias: Bool) -> ResampleAxis {
        antialias ? antialiasedCubicAxis(inputSize: inputSize, outputSize: outputSize, scaleFactor: scaleFactor)
                  : cubicAxis(inputSize: inputSize, outputSize: outputSize, scaleFactor: scaleFactor)
    }

    /// Floats of scratch `resizeChannelsLast` needs.
    public static func scratchCount(rows: ResampleAxis, cols: ResampleAxis, channels: Int) -> Int {
        rows.inputSize * cols.outputSize * channels
    }

    /// Resamples a channels-last image, `inp` (rows.inputSize, cols.inputSize, channels) into
    /// `out` (rows.outputSize, cols.outputSize, channels): width pass into `scratch`, then the
    /// height pass. Channels-last is the position table's own layout ((M, M, D) rows of a
    /// (1 + M², D) table), and keeps the inner loops contiguous.
    public static func resizeChannelsLast(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, channels: Int,
                                          rows: ResampleAxis, cols: ResampleAxis,
                                          scratch: UnsafeMutablePointer<Float>) {
        let c = channels
        let inW = cols.inputSize, outW = cols.outputSize
        // Width pass: scratch[y, xo, :] = Σ_i wx[xo, i] · inp[y, ix(xo, i), :].
        for y in 0..<rows.inputSize {
            for xo in 0..<outW {
                let dst = scratch + (y * outW + xo) * c
                if cols.isCopy {
                    dst.update(from: inp + (y * inW + xo) * c, count: c)
                    continue
                }
                accumulate(dst: dst, channels: c, taps: cols.counts[xo], base: xo * cols.stride, axis: cols) { ix in
                    inp + (y * inW + ix) * c
                }
            }
        }
        // Height pass: out[yo, xo, :] = Σ_j wy[yo, j] · scratch[iy(yo, j), xo, :].
        for yo in 0..<rows.outputSize {
            let dstRow = out + yo * outW * c
            if rows.isCopy {
                dstRow.update(from: scratch + yo * outW * c, count: outW * c)
                continue
            }
            for xo in 0..<outW {
                accumulate(dst: dstRow + xo * c, channels: c, taps: rows.counts[yo], base: yo * rows.stride, axis: rows) { iy in
                    UnsafePointer(scratch + (iy * outW + xo) * c)
                }
            }
        }
    }

    /// dst = Σ_j w_j · src(i_j) over one output's taps, rounded as ATen's loop rounds it.
    @inline(__always)
    static func accumulate(dst: UnsafeMutablePointer<Float>, channels c: Int, taps: Int, base: Int, axis: ResampleAxis,
                           source: (Int) -> UnsafePointer<Float>) {
        axis.weights.withUnsafeBufferPointer { w in
            axis.indices.withUnsafeBufferPointer { idx in
                if taps == 0 {
                    dst.update(repeating: 0, count: c)
                    return
                }
                var fusedFrom: Int
                switch axis.accumulation {
                case .unrolledFour where taps >= 2:
                    let s0 = source(idx[base]), w0 = w[base], s1 = source(idx[base + 1]), w1 = w[base + 1]
                    for ch in 0..<c { dst[ch] = (s1[ch] * w1).addingProduct(s0[ch], w0) }
                    fusedFrom = 2
                default:
                    let s0 = source(idx[base]), w0 = w[base]
                    for ch in 0..<c { dst[ch] = s0[ch] * w0 }
                    fusedFrom = 1
                    if axis.accumulation == .blockedByFour {
                        let blocked = (taps - 1) / 4 * 4
                        for j in stride(from: 1, through: blocked, by: 1) {
                            let s = source(idx[base + j]), wj = w[base + j]
                            for ch in 0..<c { dst[ch] = dst[ch] + s[ch] * wj }
                        }
                        fusedFrom = blocked + 1
                    }
                }
                for j in stride(from: fusedFrom, to: taps, by: 1) {
                    let s = source(idx[base + j]), wj = w[base + j]
                    for ch in 0..<c { dst[ch] = dst[ch].addingProduct(s[ch], wj) }
                }
            }
        }
    }

    /// Resamples (planes, height, width) planes — NCHW with N·C = planes, the layout F.interpolate
    /// takes — by transposing each plane set through the channels-last path. For tests and tools;
    /// the model calls `resizeChannelsLast` directly.
    public static func resizePlanes(_ inp: [Float], planes: Int, height: Int, width: Int,
                                     outHeight: Int, outWidth: Int,
                                     scaleFactors: (height: Double, width: Double)? = nil,
                                     antialias: Bool) -> [Float] {
        guard planes > 0, height > 0, width > 0, outHeight > 0, outWidth > 0, inp.count == planes * height * width else {
            return []
        }
        let rows = axis(inputSize: height, outputSize: outHeight, scaleFactor: scaleFactors?.height, antialias: antialias)
        let cols = axis(inputSize: width, outputSize: outWidth, scaleFactor: scaleFactors?.width, antialias: antialias)
        var hwc = [Float](repeating: 0, count: height * width * planes)
        for p in 0..<planes { for i in 0..<(height * width) { hwc[i * planes + p] = inp[p * height * width + i] } }
        let scratch = FloatBuffer(count: Swift.max(1, scratchCount(rows: rows, cols: cols, channels: planes)))
        let outHWC = FloatBuffer(count: Swift.max(1, outHeight * outWidth * planes))
        hwc.withUnsafeBufferPointer { src in
            guard let base = src.baseAddress else { return }
            resizeChannelsLast(out: outHWC.pointer, inp: base, channels: planes, rows: rows, cols: cols,
                               scratch: scratch.pointer)
        }
        var result = [Float](repeating: 0, count: outHeight * outWidth * planes)
        for p in 0..<planes {
            for i in 0..<(outHeight * outWidth) { result[p * outHeight * outWidth + i] = outHWC.pointer[i * planes + p] }
        }
        return result
    }
}
