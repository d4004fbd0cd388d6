/// The resampling filters torchvision hands to PIL (`InterpolationMode` → `PIL.Image.Resampling`).
public enum Interpolation: String, Sendable, CaseIterable {
    case nearest
    case bilinear
    case bicubic
}

/// PIL's `Image.resize` on 8-bit images (libImaging/Resample.c, Geometry.c), reimplemented so
/// results are byte-identical:
///
/// - Bilinear and bicubic (a = -0.5) are separable: two passes, each rounding and clipping to
///   8 bits. When downscaling, the filter support is widened by the scale factor
///   (antialiasing). Coefficients are computed in double, normalised per output pixel, then
///   converted to 22-bit fixed point (`PRECISION_BITS = 32 - 8 - 2`) rounding half away from
///   zero; sums start at 2^21 so the final shift rounds.
/// - Pass order: horizontal first, except — since Pillow 13 (python-pillow/Pillow#9549, "if height
///   is scaled down significantly more than width, resize vertically first") — when the height
///   shrinks and by more than twice as many pixels as the width does. The order changes the
///   8-bit intermediate, so it changes results. The exact condition was not in any Pillow
///   source available here; it was inferred by probing Pillow 13.0.0 and holds on ~1,800
///   random size pairs (bilinear and bicubic) and on the fixtures.
/// - A pass whose size does not change is skipped; equal sizes return the image unchanged.
/// - Nearest samples at `floor((i + 0.5) * in / out)`, with the position accumulated in double
///   as PIL's affine scaler does.
public enum PILResample {
    static let precisionBits = 32 - 8 - 2

    public static func resize(_ image: RGBImage, width: Int, height: Int, filter: Interpolation) throws -> RGBImage {
        guard width > 0, height > 0 else {
            throw ImageError.invalidArgument(what: "resize", detail: "target size \(width)x\(height) must be positive")
        }
        guard width <= maximumImagePixels / height else {
            throw ImageError.invalidArgument(what: "resize", detail: "target size \(width)x\(height) exceeds \(maximumImagePixels) pixels")
        }
        guard image.width > 0, image.height > 0 else {
            throw ImageError.invalidArgument(what: "resize", detail: "cannot resize an empty \(image.width)x\(image.height) image")
        }
        if width == image.width && height == image.height { return image }
        switch filter {
        case .nearest:
            return nearest(image, width: width, height: height)
        case .bilinear, .bicubic:
            var out = image
            let horizontalPass = { (im: RGBImage) in
                horizontal(im, width: width, coefficients: Coefficients(inSize: image.width, outSize: width, filter: filter))
            }
            let verticalPass = { (im: RGBImage) in
                vertical(im, height: height, coefficients: Coefficients(inSize: image.height, outSize: height, filter: filter))
            }
            if verticalFirst(inWidth: image.width, inHeight: image.height, width: width, height: height) {
                out = horizontalPass(verticalPass(out))
            } else {
                if width != image.width { out = horizontalPass(out) }
                if height != image.height { out = verticalPass(out) }
            }
            return out
        }
    }

    /// Pillow 13's pass order (see the type's comment).
    static func verticalFirst(inWidth: Int, inHeight: Int, width: Int, height: Int) -> Bool {
        width != inWidth && height < inHeight && inHeight - height > 2 * (inWidth - width)
    }

    /// Per output pixel: the first input index, the number of taps, and the fixed-point weights
    /// (`ksize` slots per output pixel, as in PIL's `precompute_coeffs`).
    struct Coefficients {
        var start: [Int]
        var count: [Int]
        var ksize: Int
        var weights: [Int32]

        init(inSize: Int, outSize: Int, filter: Interpolation) {
            let support0: Double = filter == .bicubic ? 2 : 1
            // PIL passes the box as floats; for a whole image in1 - in0 is exact.
            let scale = Double(Float(inSize)) / Double(outSize)
            let filterscale = max(scale, 1.0)
            let support = support0 * filterscale
            ksize = Int(support.rounded(.up)) * 2 + 1
            start = [Int](repeating: 0, count: outSize)
            count = [Int](repeating: 0, count: outSize)
            weights = [Int32](repeating: 0, count: outSize * ksize)
            let invFilterscale = 1.0 / filterscale
            var k = [Double](repeating: 0, count: ksize)
            for xx in 0..<outSize {
                let center = (Double(xx) + 0.5) * scale
                var ww = 0.0
                // C's (int) cast truncates toward zero; Int(_: Double) does the same.
                let xmin = max(Int(center - support + 0.5), 0)
                let xmax = min(Int(center + support + 0.5), inSize) - xmin
                for x in 0..<max(xmax, 0) {
                    let w = Self.filter(filter, (Double(x + xmin) - center + 0.5) * invFilterscale)
                    k[x] = w
                    ww += w
                }
                for x in 0..<max(xmax, 0) where ww != 0 { k[x] /= ww }
                start[xx] = xmin
                count[xx] = max(xmax, 0)
                let one = Double(1 << PILResample.precisionBits)
                for x in 0..<max(xmax, 0) {
                    let v = k[x] * one
                    weights[xx * ksize + x] = Int32(k[x] < 0 ? (-0.5 + v).rounded(.towardZero) : (0.5 + v).rounded(.towardZero))
                }
            }
        }

        static func filter(_ f: Interpolation, _ x0: Double) -> Double {
            let x = x0 < 0 ? -x0 : x0
            switch f {
            case .bilinear:
                return x < 1 ? 1 - x : 0
            case .bicubic:
                // Written in PIL's operation order so every rounding step matches.
                let a = -0.5
                if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
                if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
                return 0
            case .nearest:
                return 0
            }
        }
    }

    @inline(__always)
    static func clip8(_ ss: Int) -> UInt8 {
        UInt8(clamping: ss >> precisionBits)
    }

    static func horizontal(_ image: RGBImage, width: Int, coefficients c: Coefficients) -> RGBImage {
        let inWidth = image.width, height = image.height
        var out = [UInt8](repeating: 0, count: width * height * 3)
        let half = 1 << (precisionBits - 1)
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                c.weights.withUnsafeBufferPointer { w in
                    c.start.withUnsafeBufferPointer { start in
                        c.count.withUnsafeBufferPointer { count in
                            for y in 0..<height {
                                let row = src.baseAddress! + y * inWidth * 3
                                let outRow = dst.baseAddress! + y * width * 3
                                for xx in 0..<width {
                                    var s0 = half, s1 = half, s2 = half
                                    var p = row + start[xx] * 3
                                    let k = w.baseAddress! + xx * c.ksize
                                    for x in 0..<count[xx] {
                                        let kx = Int(k[x])
                                        s0 &+= Int(p[0]) &* kx
                                        s1 &+= Int(p[1]) &* kx
                                        s2 &+= Int(p[2]) &* kx
                                        p += 3
                                    }
                                    outRow[xx * 3] = clip8(s0)
                                    outRow[xx * 3 + 1] = clip8(s1)
                                    outRow[xx * 3 + 2] = clip8(s2)
                                }
                            }
                        }
                    }
                }
            }
        }
        return RGBImage(width: width, height: height, unchecked: out)
    }

    static func vertical(_ image: RGBImage, height: Int, coefficients c: Coefficients) -> RGBImage {
        let width = image.width, rowLength = width * 3
        var out = [UInt8](repeating: 0, count: width * height * 3)
        let half = 1 << (precisionBits - 1)
        var acc = [Int](repeating: 0, count: rowLength)
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                c.weights.withUnsafeBufferPointer { w in
                    acc.withUnsafeMutableBufferPointer { acc in
                        for yy in 0..<height {
                            // Accumulating whole rows keeps the inner loop contiguous; integer sums
                            // are exact, so the order of terms does not matter.
                            for i in 0..<rowLength { acc[i] = half }
                            let first = c.start[yy], k = w.baseAddress! + yy * c.ksize
                            for y in 0..<c.count[yy] {
                                let ky = Int(k[y])
                                let row = src.baseAddress! + (first + y) * rowLength
                                for i in 0..<rowLength { acc[i] &+= Int(row[i]) &* ky }
                            }
                            let outRow = dst.baseAddress! + yy * rowLength
                            for i in 0..<rowLength { outRow[i] = clip8(acc[i]) }
                        }
                    }
                }
            }
        }
        return RGBImage(width: width, height: height, unchecked: out)
    }

    static func nearest(_ image: RGBImage, width: Int, height: Int) -> RGBImage {
        let inWidth = image.width, inHeight = image.height
        // PIL: a[0] = (box width) / xsize; positions start at a[0] / 2 and accumulate.
        let ax = Double(Float(inWidth)) / Double(width)
        let ay = Double(Float(inHeight)) / Double(height)
        // A position that rounding pushes outside the source is left black, as PIL leaves it.
        var xin = [Int](repeating: -1, count: width)
        var xo = ax * 0.5
        for x in 0..<width {
            if xo >= 0, Int(xo) < inWidth { xin[x] = Int(xo) }
            xo += ax
        }
        var out = [UInt8](repeating: 0, count: width * height * 3)
        var yo = ay * 0.5
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<height {
                    let yi = yo >= 0 && Int(yo) < inHeight ? Int(yo) : -1
                    yo += ay
                    guard yi >= 0 else { continue }
                    let row = src.baseAddress! + yi * inWidth * 3
                    let outRow = dst.baseAddress! + y * width * 3
                    for x in 0..<width where xin[x] >= 0 {
                        let p = row + xin[x] * 3
                        outRow[x * 3] = p[0]; outRow[x * 3 + 1] = p[1]; outRow[x * 3 + 2] = p[2]
                    }
                }
            }
        }
        return RGBImage(width: width, height: height, unchecked: out)
    }
}
