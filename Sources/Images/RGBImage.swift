/// An 8-bit RGB image, pixels interleaved (R, G, B) row by row from the top-left: the layout of
/// `np.asarray(pil_image.convert("RGB"))`, shape (height, width, 3).
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// `width * height * 3` bytes.
    public private(set) var pixels: [UInt8]

    /// Refuses sizes whose pixel buffer would not match `pixels.count`.
    public init(width: Int, height: Int, pixels: [UInt8]) throws {
        guard width >= 0, height >= 0,
              case let (n, o1) = width.multipliedReportingOverflow(by: height), !o1,
              case let (bytes, o2) = n.multipliedReportingOverflow(by: 3), !o2, bytes == pixels.count
        else {
            throw ImageError.invalidArgument(what: "image", detail: "\(pixels.count) bytes do not hold \(width)x\(height) RGB")
        }
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// A black image. Sizes must already be validated (non-negative, no overflow).
    init(zeroedWidth width: Int, height: Int) {
        self.width = width
        self.height = height
        self.pixels = [UInt8](repeating: 0, count: width * height * 3)
    }

    /// Adopts a buffer the caller sized exactly; for decoders and transforms inside the module.
    init(width: Int, height: Int, unchecked pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    public var pixelCount: Int { width * height }

    /// Channel `c` (0 = R) of the pixel in column `x`, row `y`. Indices are not checked beyond
    /// the array's own bounds check.
    public subscript(x x: Int, y y: Int, c c: Int) -> UInt8 {
        pixels[(y * width + x) * 3 + c]
    }

    /// Mutable access to the pixel buffer for in-module writers.
    mutating func withMutablePixels<R>(_ body: (UnsafeMutableBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try pixels.withUnsafeMutableBufferPointer { try body($0) }
    }
}

/// PIL refuses images above twice `Image.MAX_IMAGE_PIXELS` (89,478,485) as decompression bombs;
/// DinoKit uses the same bound so both accept the same files and a hostile header cannot make it
/// allocate gigabytes.
public let maximumImagePixels = 2 * 89_478_485

func checkImageSize(width: Int, height: Int, file: String) throws {
    guard width > 0, height > 0 else {
        throw ImageError.corrupt(file: file, detail: "image size \(width)x\(height)")
    }
    guard width <= maximumImagePixels, height <= maximumImagePixels, width * height <= maximumImagePixels else {
        throw ImageError.unsupported(file: file, detail: "\(width)x\(height) exceeds the \(maximumImagePixels)-pixel limit")
    }
}
