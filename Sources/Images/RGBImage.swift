import Foundation
import TensorStore

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

/// The most pixels a decoded image (and a crop or resize target) may have: PIL's
/// `Image.MAX_IMAGE_PIXELS`, 89,478,485 (PIL warns above it and refuses twice that as a
/// decompression bomb). A header of a few bytes can declare 65535x65535 pixels; the bound is checked
/// from the header, before anything is allocated or decoded, so no header makes a decoder allocate
/// more than ~360 MB (CMYK). Real images that need more can raise it with
/// `DINOKIT_MAX_IMAGE_PIXELS` (read once).
public let maximumImagePixels: Int = {
    guard let raw = getenv(maximumImagePixelsVariable).map({ String(cString: $0) }),
          let n = Int(raw.trimmingCharacters(in: .whitespaces)), n > 0 else { return 89_478_485 }
    return n
}()

public let maximumImagePixelsVariable = "DINOKIT_MAX_IMAGE_PIXELS"

/// The one size check of every decoder (JPEG, PNG), from the header before any pixel is read.
func checkImageSize(width: Int, height: Int, file: String) throws {
    guard width > 0, height > 0 else {
        throw ImageError.corrupt(file: file, detail: "image size \(width)x\(height)")
    }
    guard width <= maximumImagePixels / height else {
        throw ImageError.unsupported(file: file, detail: "\(width)x\(height) (\(Checked.product(width, height).map(String.init) ?? "too many")"
            + " pixels) exceeds the \(maximumImagePixels)-pixel limit; set \(maximumImagePixelsVariable) to raise it for real images this large")
    }
}
