import CImageCodecs

/// JPEG decoding through TurboJPEG with PIL's results: `Image.open(f).convert("RGB")` on Pillow's
/// own libjpeg-turbo gives the same bytes (both use the accurate integer IDCT and fancy
/// upsampling, the libjpeg defaults; measured identical on the fixtures).
///
/// - Grayscale is replicated to R = G = B, as PIL's "L" → "RGB".
/// - Four-component files (CMYK or YCCK) are decoded to CMYK by libjpeg, then treated as PIL
///   does: PIL always assumes Adobe's inverted CMYK ("CMYK;I", whether or not an Adobe marker is
///   present), and its CMYK → RGB is R = 255 - C' - K' with C' = 255 - stored C, in its integer
///   arithmetic (see `cmykToRGB`).
/// - EXIF orientation is ignored (PIL applies it only through `ImageOps.exif_transpose`).
/// - libjpeg warnings (e.g. extraneous bytes, a damaged entropy segment) are ignored, as PIL
///   ignores them; a stream that ends before its EOI marker is `.truncated`, as in PIL.
///   With `strict`, a warning is an error: a frame whose scan data ends before its declared
///   size (padded by libjpeg with a fake EOI, which PIL refuses as truncated) is `.truncated`.
///   TurboJPEG's own error manager reports both through return codes (it longjmps, never
///   calls libjpeg's default exit()).
public enum JPEGDecoder {
    public static func decode(_ bytes: UnsafeRawBufferPointer, file: String, strict: Bool = false) throws -> RGBImage {
        let structure: JPEGStructure
        do {
            structure = try JPEGStructure(bytes)
        } catch JPEGStructure.Problem.notJPEG {
            throw ImageError.unsupported(file: file, detail: "not a JPEG file")
        } catch JPEGStructure.Problem.malformed(let why) {
            throw ImageError.corrupt(file: file, detail: why)
        }
        guard let frame = structure.frame else {
            if structure.reachedEnd { throw ImageError.corrupt(file: file, detail: "no frame header (SOF) before the end of the image") }
            throw ImageError.truncated(file: file, detail: "the data ends before the frame header (SOF)")
        }
        guard !frame.isLossless else {
            throw ImageError.unsupported(file: file, detail: "lossless JPEG (SOF \(hex(frame.marker)))")
        }
        guard frame.precision == 8 else {
            throw ImageError.unsupported(file: file, detail: "\(frame.precision)-bit JPEG (only 8-bit samples are supported, as in PIL)")
        }
        guard [1, 3, 4].contains(frame.components) else {
            throw ImageError.unsupported(file: file, detail: "\(frame.components)-component JPEG")
        }
        try checkImageSize(width: frame.width, height: frame.height, file: file)
        guard structure.reachedEnd else {
            throw ImageError.truncated(file: file, detail: "the data ends before the end-of-image marker")
        }
        // Checked here, before the pixel buffer is allocated: libjpeg reports both only after
        // it has decoded (the second only as a warning, the image padded to its declared size).
        guard structure.scans > 0 else {
            throw ImageError.corrupt(file: file, detail: "no scan (SOS marker) before the end-of-image marker: the file holds no image data")
        }
        if let needed = frame.minimumHuffmanScanBytes, structure.scanDataBytes < needed {
            throw ImageError.truncated(file: file, detail: "\(structure.scanDataBytes) bytes of scan data cannot hold"
                + " \(frame.width)x\(frame.height) pixels (at least \(needed) bytes); libjpeg would pad them: premature end of data segment")
        }

        guard let handle = tjInitDecompress() else {
            throw ImageError.unsupported(file: file, detail: "TurboJPEG could not start: \(String(cString: tjGetErrorStr2(nil)))")
        }
        defer { tjDestroy(handle) }

        let cmyk = frame.components == 4
        let channels = cmyk ? 4 : 3
        let pixelFormat = Int32(cmyk ? TJPF_CMYK.rawValue : TJPF_RGB.rawValue)
        let width = frame.width, height = frame.height
        var out = [UInt8](repeating: 0, count: width * height * channels)
        let status = out.withUnsafeMutableBufferPointer { dst in
            // Width and height are the frame's own, so TurboJPEG picks scale 1/1; it never writes
            // more than width x height pixels whatever the stream claims later.
            tjDecompress2(handle, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt(bytes.count),
                          dst.baseAddress, Int32(width), Int32(width * channels), Int32(height), pixelFormat,
                          strict ? TJFLAG_STOPONWARNING : 0)
        }
        let message = status == 0 ? "" : String(cString: tjGetErrorStr2(handle))
        if status != 0 && (strict || tjGetErrorCode(handle) != Int32(TJERR_WARNING.rawValue) || !isLibjpegWarning(message)) {
            // JWRN_JPEG_EOF / JWRN_HIT_MARKER: the scan data ran out and libjpeg padded it.
            if strict && message.lowercased().contains("premature end") {
                throw ImageError.truncated(file: file, detail: "\(message) (refused with --strict)")
            }
            throw ImageError.corrupt(file: file, detail: strict ? "\(message) (refused with --strict)" : message)
        }
        guard cmyk else { return RGBImage(width: width, height: height, unchecked: out) }
        return RGBImage(width: width, height: height, unchecked: cmykToRGB(out, pixels: width * height))
    }

    /// TurboJPEG (2.1) reports TJERR_WARNING whenever libjpeg warned during the call, even when a
    /// fatal error then stopped it, leaving the buffer undecoded (measured: junk before a marker,
    /// then "Invalid JPEG file structure: missing SOS marker" or "Invalid component ID 34 in SOS",
    /// both with code TJERR_WARNING). Its message is the last one libjpeg formatted: the fatal one
    /// if there was one, else the first warning. So a decode only "warned" when the message is one
    /// of libjpeg's warnings (jerror.h's JWRN_* texts).
    static func isLibjpegWarning(_ message: String) -> Bool {
        libjpegWarnings.contains { message.hasPrefix($0) }
    }

    private static let libjpegWarnings = [
        "Unknown Adobe color transform code",               // JWRN_ADOBE_XFORM
        "Corrupt JPEG data:",                               // JWRN_ARITH_BAD_CODE, EXTRANEOUS_DATA, HIT_MARKER,
                                                            // HUFF_BAD_CODE, MUST_RESYNC, BOGUS_ICC
        "Inconsistent progression sequence",                // JWRN_BOGUS_PROGRESSION
        "Warning: unknown JFIF revision number",            // JWRN_JFIF_MAJOR
        "Premature end of JPEG file",                       // JWRN_JPEG_EOF
        "Invalid SOS parameters for sequential JPEG",       // JWRN_NOT_SEQUENTIAL
        "Application transferred too many scanlines",       // JWRN_TOO_MUCH_DATA
    ]

    /// PIL's "CMYK;I" unpacking followed by its `cmyk2rgb`: with inverted ink c = 255 - C and
    /// nk = 255 - (255 - K) = K, R = nk - round-ish(c * nk / 255) using PIL's MULDIV255.
    static func cmykToRGB(_ cmyk: [UInt8], pixels: Int) -> [UInt8] {
        var rgb = [UInt8](repeating: 0, count: pixels * 3)
        cmyk.withUnsafeBufferPointer { src in
            rgb.withUnsafeMutableBufferPointer { dst in
                for p in 0..<pixels {
                    let nk = Int(src[p * 4 + 3])
                    for c in 0..<3 {
                        let ink = 255 - Int(src[p * 4 + c])
                        let t = ink * nk + 128
                        let v = nk - (((t >> 8) + t) >> 8)
                        dst[p * 3 + c] = UInt8(clamping: v)
                    }
                }
            }
        }
        return rgb
    }
}
