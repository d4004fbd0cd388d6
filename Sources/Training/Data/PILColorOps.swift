import Foundation

/// An 8-bit RGB crop being augmented: interleaved (R, G, B) rows, as `np.asarray(pil_image)`.
/// The colour operations below work in place on it.
public struct CropPixels: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var bytes: [UInt8]

    public init(width: Int, height: Int, bytes: [UInt8]) {
        self.width = width
        self.height = height
        self.bytes = bytes
    }
}

/// torchvision's colour transforms on PIL images, reimplemented on `CropPixels` so that results
/// are byte-identical to Pillow's C code (libImaging Blend.c, Convert.c; PIL/ImageEnhance.py;
/// torchvision/transforms/_functional_pil.py):
///
/// - brightness, contrast and saturation are `ImageEnhance` blends `degenerate + f·(img − degenerate)`
///   computed in float32 per byte, clipped to 0...255 and truncated (Blend.c);
/// - the degenerate images: black (brightness); a flat grey of `int(mean(L) + 0.5)` (contrast);
///   the luma image L (saturation), where L = (19595·R + 38470·G + 7471·B + 0x8000) >> 16;
/// - hue converts to PIL's 8-bit HSV, adds `uint8(int32(h·255))` to H with wrap-around, converts back;
/// - grayscale is L replicated to three channels (`convert("L")`, then stacked);
/// - solarize inverts values at or above the threshold (`ImageOps.solarize`).
public enum PILColorOps {
    @inline(__always)
    static func luma(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> UInt8 {
        UInt8(truncatingIfNeeded: (Int(r) * 19595 + Int(g) * 38470 + Int(b) * 7471 + 0x8000) >> 16)
    }

    /// Blend.c's per-byte expression with `alpha` already a C float.
    @inline(__always)
    static func blend(_ degenerate: UInt8, _ value: UInt8, _ alpha: Float) -> UInt8 {
        let t = Float(Int(degenerate)) + alpha * Float(Int(value) - Int(degenerate))
        if t <= 0 { return 0 }
        if t >= 255 { return 255 }
        return UInt8(t)
    }

    public static func adjustBrightness(_ img: inout CropPixels, factor: Double) {
        let a = Float(factor)
        for i in img.bytes.indices { img.bytes[i] = blend(0, img.bytes[i], a) }
    }

    public static func adjustContrast(_ img: inout CropPixels, factor: Double) {
        let a = Float(factor)
        // ImageStat's mean of the L image: a histogram sum in double.
        var histogram = [Int](repeating: 0, count: 256)
        img.bytes.withUnsafeBufferPointer { p in
            var i = 0
            while i + 2 < p.count {
                histogram[Int(luma(p[i], p[i + 1], p[i + 2]))] += 1
                i += 3
            }
        }
        let n = img.width * img.height
        var sum = 0.0
        for v in 0..<256 { sum += Double(histogram[v]) * Double(v) }
        let mean = n > 0 ? sum / Double(n) : 0
        let grey = UInt8(clamping: Int(mean + 0.5))
        for i in img.bytes.indices { img.bytes[i] = blend(grey, img.bytes[i], a) }
    }

    public static func adjustSaturation(_ img: inout CropPixels, factor: Double) {
        let a = Float(factor)
        img.bytes.withUnsafeMutableBufferPointer { p in
            var i = 0
            while i + 2 < p.count {
                let l = luma(p[i], p[i + 1], p[i + 2])
                p[i] = blend(l, p[i], a)
                p[i + 1] = blend(l, p[i + 1], a)
                p[i + 2] = blend(l, p[i + 2], a)
                i += 3
            }
        }
    }

    public static func adjustHue(_ img: inout CropPixels, factor: Double) {
        // np.int32(hue_factor * 255).astype(np.uint8): truncate toward zero, then wrap.
        let shift = UInt8(truncatingIfNeeded: Int32(factor * 255))
        img.bytes.withUnsafeMutableBufferPointer { p in
            var i = 0
            while i + 2 < p.count {
                var (h, s, v) = rgbToHSV(p[i], p[i + 1], p[i + 2])
                h = h &+ shift
                (p[i], p[i + 1], p[i + 2]) = hsvToRGB(h, s, v)
                i += 3
            }
        }
    }

    /// `rgb2hsv_row` of Convert.c, with its mix of float variables and double constants.
    static func rgbToHSV(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> (UInt8, UInt8, UInt8) {
        let maxc = max(r, max(g, b)), minc = min(r, min(g, b))
        if maxc == minc { return (0, 0, maxc) }
        let cr = Float(Int(maxc) - Int(minc))
        let s: Float = cr / Float(maxc)
        let rc: Float = Float(Int(maxc) - Int(r)) / cr
        let gc: Float = Float(Int(maxc) - Int(g)) / cr
        let bc: Float = Float(Int(maxc) - Int(b)) / cr
        var h: Float
        if r == maxc {
            h = bc - gc
        } else if g == maxc {
            h = Float(2.0 + Double(rc) - Double(bc))
        } else {
            h = Float(4.0 + Double(gc) - Double(rc))
        }
        h = Float(fmod(Double(h) / 6.0 + 1.0, 1.0))
        return (clip8(Int(Double(h) * 255.0)), clip8(Int(Double(s) * 255.0)), maxc)
    }

    /// `hsv2rgb` of Convert.c.
    static func hsvToRGB(_ h: UInt8, _ s: UInt8, _ v: UInt8) -> (UInt8, UInt8, UInt8) {
        if s == 0 { return (v, v, v) }
        let i = Int(floor(Double(Float(h)) * 6.0 / 255.0))
        let f = Float(Double(Float(h)) * 6.0 / 255.0 - Double(i))
        let fs = Float(Double(Float(s)) / 255.0)
        let vd = Double(Float(v))
        let p = clip8(Int((vd * (1.0 - Double(fs))).rounded(.toNearestOrAwayFromZero)))
        // `fs * f` is a float product in C; the other terms are doubles.
        let q = clip8(Int((vd * (1.0 - Double(fs * f))).rounded(.toNearestOrAwayFromZero)))
        let t = clip8(Int((vd * (1.0 - Double(fs) * (1.0 - Double(f)))).rounded(.toNearestOrAwayFromZero)))
        switch i % 6 {
        case 0: return (v, t, p)
        case 1: return (q, v, p)
        case 2: return (p, v, t)
        case 3: return (p, q, v)
        case 4: return (t, p, v)
        default: return (v, p, q)
        }
    }

    @inline(__always)
    static func clip8(_ x: Int) -> UInt8 { x <= 0 ? 0 : x >= 255 ? 255 : UInt8(x) }

    public static func grayscale(_ img: inout CropPixels) {
        img.bytes.withUnsafeMutableBufferPointer { p in
            var i = 0
            while i + 2 < p.count {
                let l = luma(p[i], p[i + 1], p[i + 2])
                p[i] = l; p[i + 1] = l; p[i + 2] = l
                i += 3
            }
        }
    }

    public static func solarize(_ img: inout CropPixels, threshold: Int) {
        for i in img.bytes.indices where Int(img.bytes[i]) >= threshold { img.bytes[i] = 255 - img.bytes[i] }
    }

    public static func flipHorizontally(_ img: inout CropPixels) {
        let w = img.width
        img.bytes.withUnsafeMutableBufferPointer { p in
            for y in 0..<img.height {
                let row = y * w * 3
                var a = 0, b = w - 1
                while a < b {
                    for c in 0..<3 { p.swapAt(row + a * 3 + c, row + b * 3 + c) }
                    a += 1; b -= 1
                }
            }
        }
    }
}
