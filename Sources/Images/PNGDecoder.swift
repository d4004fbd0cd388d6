import CImageCodecs
import TensorStore

/// PNG decoding through libpng with PIL's results (`Image.open(f).convert("RGB")`, checked
/// against Pillow on the fixtures):
///
/// - No gamma or colour management (gAMA, cHRM, sRGB, iCCP are ignored).
/// - Alpha is dropped, not composited: RGBA → RGB keeps the colour samples as stored; palette
///   transparency and tRNS colour keys are ignored.
/// - 1/2/4-bit gray is scaled to 8 bits (×255, ×85, ×17); palettes are looked up.
/// - 16-bit colour keeps the high byte of each sample (PIL's "RGB;16B" unpacking); 16-bit gray
///   opens in PIL as mode "I;16", whose conversion to RGB *clips* to 255 (values above 255
///   become white). Both quirks are PIL's, reproduced on purpose.
///
/// libpng reports errors by longjmp, which Swift cannot catch. Its simplified API
/// (`png_image_*`) catches them internally and is used for every file, asked for the file's own
/// channels (alpha included) and precision after the chunks that would make it convert samples
/// are removed (`PNGChunks.withoutColorSpaceChunks`), so it only unpacks. For 16-bit images with an
/// alpha channel it cannot return the stored colour samples (its 16-bit output pre-multiplies by
/// alpha), so after the simplified API has read the whole file without error, the same bytes are
/// read again through the low-level API with only sample-preserving transforms.
public enum PNGDecoder {
    public static func decode(_ bytes: UnsafeRawBufferPointer, file: String) throws -> RGBImage {
        if let edited = PNGChunks.withoutColorSpaceChunks(bytes) {
            return try edited.withUnsafeBytes { try decodeUnedited($0, file: file) }
        }
        return try decodeUnedited(bytes, file: file)
    }

    private static func decodeUnedited(_ bytes: UnsafeRawBufferPointer, file: String) throws -> RGBImage {
        guard let base = bytes.baseAddress, bytes.count >= 8 else {
            throw ImageError.unsupported(file: file, detail: "not a PNG file")
        }
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_memory(&image, base, bytes.count) != 0 else {
            throw error(from: &image, file: file)
        }
        let width = Int(image.width), height = Int(image.height)
        do {
            try checkImageSize(width: width, height: height, file: file)
            try checkImageData(bytes, width: width, height: height, file: file)
        } catch {
            png_image_free(&image)
            throw error
        }
        let fileFormat = image.format
        let hasAlpha = fileFormat & PNG_FORMAT_FLAG_ALPHA != 0
        let isColor = fileFormat & PNG_FORMAT_FLAG_COLOR != 0
        let is16 = fileFormat & PNG_FORMAT_FLAG_LINEAR != 0
        let pixels = width * height

        if is16 && hasAlpha {
            // Validation pass: the simplified API reads every row, catching any libpng error.
            let channels = isColor ? 4 : 2
            var scratch = [UInt16](repeating: 0, count: pixels * channels)
            image.format = fileFormat & (PNG_FORMAT_FLAG_ALPHA | PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_LINEAR)
            let ok = scratch.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
            guard ok != 0 else { throw error(from: &image, file: file) }
            scratch = []
            return try PNGLowLevelReader.readHighBytesDroppingAlpha(bytes, width: width, height: height, gray: !isColor, file: file)
        }

        // Ask for exactly the file's channels (alpha included, so libpng never composites) at
        // the file's precision: no conversion happens, only unpacking and palette expansion
        // (a palette file's COLORMAP flag is cleared: the palette is expanded, not returned).
        image.format = fileFormat & (PNG_FORMAT_FLAG_ALPHA | PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_LINEAR)
        let channels = (isColor ? 3 : 1) + (hasAlpha ? 1 : 0)
        var rgb = [UInt8](repeating: 0, count: pixels * 3)
        if is16 {
            var samples = [UInt16](repeating: 0, count: pixels * channels)
            let ok = samples.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
            guard ok != 0 else { throw error(from: &image, file: file) }
            samples.withUnsafeBufferPointer { s in
                rgb.withUnsafeMutableBufferPointer { d in
                    if isColor {
                        for i in 0..<(pixels * 3) { d[i] = UInt8(s[i] >> 8) }     // PIL "RGB;16B"
                    } else {
                        for p in 0..<pixels {                                      // PIL "I;16" → RGB
                            let v = UInt8(clamping: s[p])
                            d[p * 3] = v; d[p * 3 + 1] = v; d[p * 3 + 2] = v
                        }
                    }
                }
            }
        } else {
            var samples = [UInt8](repeating: 0, count: pixels * channels)
            let ok = samples.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
            guard ok != 0 else { throw error(from: &image, file: file) }
            samples.withUnsafeBufferPointer { s in
                rgb.withUnsafeMutableBufferPointer { d in
                    if isColor {
                        for p in 0..<pixels {
                            d[p * 3] = s[p * channels]; d[p * 3 + 1] = s[p * channels + 1]; d[p * 3 + 2] = s[p * channels + 2]
                        }
                    } else {
                        for p in 0..<pixels {
                            let v = s[p * channels]
                            d[p * 3] = v; d[p * 3 + 1] = v; d[p * 3 + 2] = v
                        }
                    }
                }
            }
        }
        return RGBImage(width: width, height: height, unchecked: rgb)
    }

    /// Refuses, before the pixel buffer is allocated, image data too short for the declared size:
    /// deflate expands at most 1032:1, so fewer IDAT bytes than the pixels' bits / 8 / 1032 are
    /// truncated whatever they hold (libpng would say "Not enough image data", after allocating).
    private static func checkImageData(_ bytes: UnsafeRawBufferPointer, width: Int, height: Int, file: String) throws {
        guard let header = PNGChunks.header(bytes), let bits = PNGChunks.bitsPerPixel(header) else { return }
        let pixelBytes = Checked.product(width * height / 8, bits) ?? .max   // width, height < 2^31
        let compressed = PNGChunks.imageDataBytes(bytes)
        guard compressed >= pixelBytes / PNGChunks.maximumDeflateRatio else {
            throw ImageError.truncated(file: file, detail: "\(compressed) bytes of image data (IDAT) cannot hold"
                + " \(width)x\(height) pixels (at least \(pixelBytes / PNGChunks.maximumDeflateRatio) bytes at deflate's 1032:1)")
        }
    }

    /// The simplified API's message as a typed error. It has already freed the image.
    private static func error(from image: inout png_image, file: String) -> ImageError {
        let message = withUnsafeBytes(of: &image.message) { raw -> String in
            let chars = raw.bindMemory(to: CChar.self)
            let end = chars.firstIndex(of: 0) ?? chars.count
            return String(decoding: raw.prefix(end), as: UTF8.self)
        }
        png_image_free(&image)
        let lower = message.lowercased()
        if lower.contains("beyond end of data") || lower.contains("not enough image data") || lower.contains("truncated") {
            return .truncated(file: file, detail: message)
        }
        if lower.contains("signature") && !lower.contains("crc") {
            return .unsupported(file: file, detail: message)
        }
        return .corrupt(file: file, detail: message.isEmpty ? "libpng could not read the file" : message)
    }
}
