/// PNG chunk-level facts and edits made before libpng sees a file.
enum PNGChunks {
    /// Colour types from IHDR.
    static let gray: UInt8 = 0, rgb: UInt8 = 2, palette: UInt8 = 3, grayAlpha: UInt8 = 4, rgba: UInt8 = 6

    struct Header {
        var bitDepth: UInt8
        var colorType: UInt8
    }

    /// IHDR's bit depth and colour type, when the first chunk is a well-formed IHDR.
    static func header(_ bytes: UnsafeRawBufferPointer) -> Header? {
        // signature (8) + length (4) + "IHDR" (4) + width, height (8) + depth + colour type
        guard bytes.count >= 26, bytes[12] == 0x49, bytes[13] == 0x48, bytes[14] == 0x44, bytes[15] == 0x52 else { return nil }
        return Header(bitDepth: bytes[24], colorType: bytes[25])
    }

    /// Bits per pixel as stored: samples per pixel (palette index, gray, gray+alpha, RGB, RGBA)
    /// times the bit depth; nil for a colour type PNG does not define.
    static func bitsPerPixel(_ header: Header) -> Int? {
        let samples: [UInt8: Int] = [gray: 1, palette: 1, grayAlpha: 2, rgb: 3, rgba: 4]
        return samples[header.colorType].map { $0 * Int(header.bitDepth) }
    }

    /// The chunks after the signature, in order, up to and including IEND: `body(type, range of
    /// the whole chunk, data length)`. A chunk whose length runs past the end stops the walk (what
    /// follows is left for libpng to judge).
    static func forEachChunk(_ bytes: UnsafeRawBufferPointer,
                             _ body: (_ type: (UInt8, UInt8, UInt8, UInt8), _ chunk: Range<Int>, _ length: Int) -> Void) {
        var i = 8
        while i + 12 <= bytes.count {
            let length = Int(bytes[i]) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            let end = i + 12 + length
            guard length <= 0x7FFF_FFFF, end <= bytes.count else { return }
            let type = (bytes[i + 4], bytes[i + 5], bytes[i + 6], bytes[i + 7])
            body(type, i..<end, length)
            if type == (0x49, 0x45, 0x4E, 0x44) { return } // IEND
            i = end
        }
    }

    /// Total length of the IDAT chunks (the zlib stream of the image data).
    static func imageDataBytes(_ bytes: UnsafeRawBufferPointer) -> Int {
        var total = 0
        forEachChunk(bytes) { type, _, length in
            if type == (0x49, 0x44, 0x41, 0x54) { total += length } // IDAT
        }
        return total
    }

    /// Deflate's largest expansion: a 258-byte match coded in two bits.
    static let maximumDeflateRatio = 1032

    /// The file without the chunks that would make libpng's simplified reader change sample
    /// values where PIL does not: colour-space chunks (gAMA, cHRM, sRGB, iCCP — PIL applies no
    /// gamma or colour management when converting) and, for gray and RGB images, tRNS (PIL's
    /// `convert("RGB")` ignores a transparent colour key; libpng would turn it into an alpha
    /// channel that its 16-bit path pre-multiplies). Returns nil when nothing needs removing.
    ///
    /// Chunks are dropped whole, so the remaining CRCs stay valid; the walk is `forEachChunk`'s.
    static func withoutColorSpaceChunks(_ bytes: UnsafeRawBufferPointer) -> [UInt8]? {
        guard let header = header(bytes) else { return nil }
        let dropTRNS = header.colorType == gray || header.colorType == rgb
        func dropped(_ t: (UInt8, UInt8, UInt8, UInt8)) -> Bool {
            switch t {
            case (0x67, 0x41, 0x4D, 0x41), // gAMA
                 (0x63, 0x48, 0x52, 0x4D), // cHRM
                 (0x73, 0x52, 0x47, 0x42), // sRGB
                 (0x69, 0x43, 0x43, 0x50): // iCCP
                return true
            case (0x74, 0x52, 0x4E, 0x53): // tRNS
                return dropTRNS
            default:
                return false
            }
        }
        var ranges: [Range<Int>] = []  // chunks to drop
        forEachChunk(bytes) { type, chunk, _ in
            if dropped(type) { ranges.append(chunk) }
        }
        guard !ranges.isEmpty else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var start = 0
        for r in ranges {
            out.append(contentsOf: bytes[start..<r.lowerBound])
            start = r.upperBound
        }
        out.append(contentsOf: bytes[start...])
        return out
    }
}
