import CImageCodecs

/// libpng's low-level reader, used only for 16-bit images with an alpha channel and only on bytes
/// the simplified API has just read completely without error (see `PNGDecoder`).
///
/// The low-level API reports errors by calling the error callback and then longjmp-ing, which
/// Swift cannot intercept; returning from the callback makes libpng abort. The reading steps
/// here mirror the simplified reader's (same benign-error setting, same chunk filtering, same
/// row reads, no `png_read_end`), so every byte libpng inspects has already been accepted once.
enum PNGLowLevelReader {
    /// Memory source for `png_set_read_fn`.
    private final class Source {
        let bytes: UnsafeRawBufferPointer
        var offset = 0
        init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }
    }

    private static let read: png_rw_ptr = { png, out, count in
        guard let png, let out, let io = png_get_io_ptr(png) else { return }
        let source = Unmanaged<Source>.fromOpaque(io).takeUnretainedValue()
        let available = source.bytes.count - source.offset
        guard count <= available else {
            // Unreachable after validation; hand libpng its own error path rather than garbage.
            png_error(png, "read beyond end of data")
        }
        UnsafeMutableRawPointer(out).copyMemory(from: source.bytes.baseAddress! + source.offset, byteCount: count)
        source.offset += count
    }

    private static let ignoreWarning: png_error_ptr = { _, _ in }

    /// Chunks libpng's simplified reader still processes; everything else it skips.
    private static let processedChunks: [UInt8] = Array("bKGD\0cHRM\0gAMA\0iCCP\0sBIT\0sRGB\0".utf8)

    /// Colour samples of a 16-bit gray+alpha or RGBA file as PIL keeps them: the high byte of
    /// each (PIL's "LA;16B"/"RGBA;16B" unpacking), alpha dropped, gray replicated to RGB.
    static func readHighBytesDroppingAlpha(_ bytes: UnsafeRawBufferPointer, width: Int, height: Int, gray: Bool, file: String) throws -> RGBImage {
        let source = Source(bytes)
        return try withExtendedLifetime(source) { () throws -> RGBImage in
            var created: png_structp? = PNG_LIBPNG_VER_STRING.withCString { png_create_read_struct($0, nil, nil, ignoreWarning) }
            var createdInfo: png_infop? = created.flatMap { png_create_info_struct($0) }
            defer { png_destroy_read_struct(&created, &createdInfo, nil) }
            guard let png = created, let info = createdInfo else {
                throw ImageError.corrupt(file: file, detail: "libpng could not allocate a reader")
            }

            png_set_read_fn(png, Unmanaged.passUnretained(source).toOpaque(), read)
            png_set_benign_errors(png, 1)
            png_read_info(png, info)
            guard png_get_image_width(png, info) == width, png_get_image_height(png, info) == height,
                  png_get_bit_depth(png, info) == 16 else {
                throw ImageError.corrupt(file: file, detail: "the image header changed between reads")
            }
            png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, nil, -1)
            processedChunks.withUnsafeBufferPointer {
                png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_AS_DEFAULT, $0.baseAddress, Int32($0.count / 5))
            }
            png_set_strip_16(png)     // keeps the high byte, as PIL's unpackers do
            png_set_strip_alpha(png)
            if gray { png_set_gray_to_rgb(png) }
            let passes = png_set_interlace_handling(png)
            png_read_update_info(png, info)
            guard png_get_rowbytes(png, info) == width * 3 else {
                throw ImageError.corrupt(file: file, detail: "unexpected row size after transforms")
            }
            var rgb = [UInt8](repeating: 0, count: width * height * 3)
            rgb.withUnsafeMutableBufferPointer { buf in
                for _ in 0..<max(1, Int(passes)) {
                    for y in 0..<height {
                        png_read_row(png, buf.baseAddress! + y * width * 3, nil)
                    }
                }
            }
            return RGBImage(width: width, height: height, unchecked: rgb)
        }
    }
}
