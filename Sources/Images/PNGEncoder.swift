import CImageCodecs
import TensorStore

/// Writes 8-bit RGB images as PNG through libpng's simplified write API
/// (`png_image_write_to_memory`), for pictures DinoKit makes (probe reports). The file is
/// written atomically.
public enum PNGEncoder {
    /// The PNG bytes of `image`.
    public static func encode(_ image: RGBImage) throws -> [UInt8] {
        guard image.width > 0, image.height > 0 else {
            throw ImageError.invalidArgument(what: "PNG image", detail: "size \(image.width)x\(image.height) is empty")
        }
        var png = png_image()
        png.version = UInt32(PNG_IMAGE_VERSION)
        png.width = UInt32(image.width)
        png.height = UInt32(image.height)
        png.format = UInt32(PNG_FORMAT_FLAG_COLOR)
        let stride = Int32(image.width * 3)
        // First call sizes the output, the second fills it.
        var size = 0
        let sized = image.pixels.withUnsafeBytes { px in
            png_image_write_to_memory(&png, nil, &size, 0, px.baseAddress, stride, nil)
        }
        guard sized != 0, size > 0 else { throw failure(&png) }
        var out = [UInt8](repeating: 0, count: size)
        let written = out.withUnsafeMutableBytes { dst in
            image.pixels.withUnsafeBytes { px in
                png_image_write_to_memory(&png, dst.baseAddress, &size, 0, px.baseAddress, stride, nil)
            }
        }
        guard written != 0 else { throw failure(&png) }
        png_image_free(&png)
        return Array(out.prefix(size))
    }

    /// Encodes `image` and writes it to `path` atomically.
    public static func write(_ image: RGBImage, to path: String) throws {
        let bytes = try encode(image)
        try AtomicFileWriter.write(to: path) { try $0.write(bytes) }
    }

    private static func failure(_ png: inout png_image) -> ImageError {
        let message = withUnsafeBytes(of: png.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        png_image_free(&png)
        return .invalidArgument(what: "PNG encoding", detail: message.isEmpty ? "libpng failed" : message)
    }
}
