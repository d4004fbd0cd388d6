import TensorStore

/// A size in torchvision's order: height first.
public struct ImageSize: Hashable, Sendable, CustomStringConvertible {
    public var height: Int
    public var width: Int

    public init(height: Int, width: Int) {
        self.height = height
        self.width = width
    }

    public var description: String { "\(height)x\(width) (h x w)" }
}

/// The `size` argument of `torchvision.transforms.Resize`.
public enum ResizeSize: Hashable, Sendable {
    /// `Resize(n)` / `Resize(n, max_size=m)`: the shorter side becomes n, the longer
    /// `int(n * long / short)`; with `maxSize`, a longer side above it is brought down to it and
    /// the shorter side scaled to `int(maxSize * short / long)`.
    case shorterSide(Int, maxSize: Int? = nil)
    /// `Resize((h, w))`.
    case exact(ImageSize)
}

/// torchvision's transforms on PIL images (torchvision/transforms/functional.py), on `RGBImage`.
public enum Transforms {
    /// torchvision's `_compute_resized_output_size` for an image of `width` x `height`.
    public static func resizedSize(width: Int, height: Int, to size: ResizeSize) throws -> ImageSize {
        switch size {
        case let .exact(s):
            guard s.height > 0, s.width > 0 else {
                throw ImageError.invalidArgument(what: "resize size", detail: "\(s) must be positive")
            }
            return s
        case let .shorterSide(requested, maxSize):
            guard requested > 0 else {
                throw ImageError.invalidArgument(what: "resize size", detail: "shorter side \(requested) must be positive")
            }
            guard width > 0, height > 0 else {
                throw ImageError.invalidArgument(what: "resize", detail: "cannot resize an empty \(width)x\(height) image")
            }
            let (short, long) = width <= height ? (width, height) : (height, width)
            // Python: int(requested * long / short) — an exact product, one correctly rounded
            // division, truncation. Doubles reproduce it for any realistic size.
            var newShort = requested
            var newLong = Int(Double(requested * long) / Double(short))
            if let maxSize {
                guard maxSize > requested else {
                    throw ImageError.invalidArgument(what: "resize max_size", detail: "max_size = \(maxSize) must be strictly greater than the requested size for the smaller edge \(requested)")
                }
                if newLong > maxSize {
                    newShort = Int(Double(maxSize * newShort) / Double(newLong))
                    newLong = maxSize
                }
            }
            return width <= height ? ImageSize(height: newLong, width: newShort) : ImageSize(height: newShort, width: newLong)
        }
    }

    /// `F.resize` on a PIL image: unchanged when already the target size, else PIL's resize.
    public static func resize(_ image: RGBImage, to size: ResizeSize, interpolation: Interpolation) throws -> RGBImage {
        let target = try resizedSize(width: image.width, height: image.height, to: size)
        if target.height == image.height && target.width == image.width { return image }
        return try PILResample.resize(image, width: target.width, height: target.height, filter: interpolation)
    }

    /// `F.center_crop`: pads with zeros (left/top get the smaller half) when the crop is larger
    /// than the image, then crops at `round((size - crop) / 2)` with Python's round-half-to-even.
    public static func centerCrop(_ image: RGBImage, to size: ImageSize) throws -> RGBImage {
        guard size.height > 0, size.width > 0 else {
            throw ImageError.invalidArgument(what: "crop size", detail: "\(size) must be positive")
        }
        guard size.width <= maximumImagePixels / size.height else {
            throw ImageError.invalidArgument(what: "crop size", detail: "\(size) exceeds \(maximumImagePixels) pixels")
        }
        var padLeft = 0, padTop = 0, width = image.width, height = image.height
        if size.width > width || size.height > height {
            if size.width > width {
                padLeft = (size.width - width) / 2
                width = size.width
            }
            if size.height > height {
                padTop = (size.height - height) / 2
                height = size.height
            }
        }
        let top = Int((Double(height - size.height) / 2).rounded(.toNearestOrEven))
        let left = Int((Double(width - size.width) / 2).rounded(.toNearestOrEven))
        // Window origin in the unpadded image's coordinates.
        return crop(image, top: top - padTop, left: left - padLeft, size: size)
    }

    /// The `size` window whose top-left corner is at (`top`, `left`); pixels outside the image
    /// are black, as PIL's `crop` gives them.
    public static func crop(_ image: RGBImage, top: Int, left: Int, size: ImageSize) -> RGBImage {
        var out = RGBImage(zeroedWidth: size.width, height: size.height)
        let x0 = max(left, 0), x1 = min(left + size.width, image.width)
        guard x0 < x1 else { return out }
        let run = (x1 - x0) * 3
        image.pixels.withUnsafeBufferPointer { src in
            out.withMutablePixels { dst in
                for y in 0..<size.height {
                    let sy = top + y
                    guard sy >= 0, sy < image.height else { continue }
                    let from = src.baseAddress! + (sy * image.width + x0) * 3
                    let to = dst.baseAddress! + (y * size.width + (x0 - left)) * 3
                    to.update(from: from, count: run)
                }
            }
        }
        return out
    }

    /// `ToTensor()` then `Normalize(mean, std)` per channel value: (v / 255 - mean) / std, each
    /// step a float32 operation as torch performs it (mean and std rounded to float32 first).
    /// 3 × 256 entries, channel-major.
    public static func normalizationTable(mean: [Double], std: [Double]) throws -> [Float] {
        guard mean.count == 3, std.count == 3 else {
            throw ImageError.invalidArgument(what: "normalization", detail: "mean and std need 3 values each, got \(mean.count) and \(std.count)")
        }
        let m = mean.map { Float($0) }, s = std.map { Float($0) }
        guard s.allSatisfy({ $0 != 0 && $0.isFinite }), m.allSatisfy(\.isFinite) else {
            throw ImageError.invalidArgument(what: "normalization", detail: "std \(std) must be finite and non-zero in float32, mean \(mean) finite")
        }
        var table = [Float](repeating: 0, count: 3 * 256)
        for c in 0..<3 {
            for v in 0..<256 {
                let x = Float(v) / 255
                table[c * 256 + v] = (x - m[c]) / s[c]
            }
        }
        return table
    }

    /// The table for plain `ToTensor()`: v / 255 in float32.
    static let toTensorTable: [Float] = (0..<(3 * 256)).map { Float($0 % 256) / 255 }

    /// Writes `image` as (3, H, W) floats through `table` (see `normalizationTable`).
    static func write(_ image: RGBImage, table: [Float], into out: UnsafeMutablePointer<Float>) {
        let plane = image.width * image.height
        image.pixels.withUnsafeBufferPointer { src in
            table.withUnsafeBufferPointer { t in
                for c in 0..<3 {
                    let lut = t.baseAddress! + c * 256
                    let dst = out + c * plane
                    for p in 0..<plane { dst[p] = lut[Int(src[p * 3 + c])] }
                }
            }
        }
    }

    /// `ToTensor()`: a (3, H, W) float32 tensor of v / 255.
    public static func toTensor(_ image: RGBImage) -> Tensor {
        tensor(image, table: toTensorTable)
    }

    /// `ToTensor()` then `Normalize(mean, std)`: a (3, H, W) float32 tensor.
    public static func normalizedTensor(_ image: RGBImage, mean: [Double], std: [Double]) throws -> Tensor {
        tensor(image, table: try normalizationTable(mean: mean, std: std))
    }

    static func tensor(_ image: RGBImage, table: [Float]) -> Tensor {
        let storage = Storage(byteCount: 3 * image.width * image.height * 4)
        if image.pixelCount > 0, let base = storage.mutableBytes.bindMemory(to: Float.self).baseAddress {
            write(image, table: table, into: base)
        }
        // Cannot fail: a fresh storage of exactly this size.
        return try! Tensor(storage: storage, dtype: .f32, shape: [3, image.height, image.width])
    }
}
