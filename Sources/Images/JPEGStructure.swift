/// What a walk over a JPEG's marker segments finds, without decoding any pixels: the frame header
/// and whether the stream reaches its end-of-image marker.
///
/// The walk exists because TurboJPEG cannot tell "truncated" from "complete": its memory source
/// pads a short stream with a fake end-of-image marker and only warns. PIL, reading through a
/// suspending source, reports a file that ends before EOI as "image file is truncated", so that is
/// the rule DinoKit applies.
struct JPEGStructure {
    struct Frame {
        var marker: UInt8          // SOFn (0xC0...0xCF minus DHT, JPG, DAC)
        var precision: Int
        var width: Int
        var height: Int
        var components: Int

        var isLossless: Bool { marker == 0xC3 || marker == 0xC7 || marker == 0xCB || marker == 0xCF }
        /// SOF9...SOF15: arithmetic coding, which can spend well under a bit on a block.
        var isArithmetic: Bool { marker >= 0xC9 }

        /// The fewest bytes of Huffman-coded scan data that can hold this frame. Every 8x8 block
        /// of a full-resolution component carries a DC difference (in a sequential scan, or in
        /// the first DC scan a progressive file must have), and a Huffman code is at least one bit
        /// long, so the scans hold at least ceil(W/8)·ceil(H/8) bits. Less data cannot be the
        /// image: libjpeg pads it with zeros ("premature end of data segment") and decodes
        /// garbage, at the full declared size. Nil for arithmetic coding (no such bound).
        var minimumHuffmanScanBytes: Int? {
            isArithmetic ? nil : ((width + 7) / 8) * ((height + 7) / 8) / 8
        }
    }

    var frame: Frame?
    var scans = 0
    /// Bytes of entropy-coded data after the scan headers (stuffed bytes and restart markers
    /// included, so never less than the coded bits).
    var scanDataBytes = 0
    var reachedEnd = false

    enum Problem: Error {
        case notJPEG
        case malformed(String)
    }

    /// Walks `bytes` from SOI to EOI. A stream that runs out first is reported with
    /// `reachedEnd == false`, not thrown, so callers can say "truncated".
    init(_ bytes: UnsafeRawBufferPointer) throws {
        let n = bytes.count
        guard n >= 2, bytes[0] == 0xFF, bytes[1] == 0xD8 else { throw Problem.notJPEG }
        var i = 2
        while i < n {
            // libjpeg skips junk before a marker (with a warning); so does this walk.
            guard bytes[i] == 0xFF else { i += 1; continue }
            // Any number of 0xFF fill bytes may precede the marker code.
            while i < n, bytes[i] == 0xFF { i += 1 }
            guard i < n else { return }
            let marker = bytes[i]
            i += 1
            switch marker {
            case 0xD9:
                reachedEnd = true
                return
            case 0x00, 0x01, 0xD0...0xD7:
                continue // stuffed zero, TEM or a stray restart marker: no length field
            default:
                break
            }
            guard i + 2 <= n else { return }
            let length = Int(bytes[i]) << 8 | Int(bytes[i + 1])
            guard length >= 2 else { throw Problem.malformed("marker 0xFF\(hex(marker)) has length \(length)") }
            guard i + length <= n else { return }
            let body = i + 2
            switch marker {
            case 0xC0...0xCF where marker != 0xC4 && marker != 0xC8 && marker != 0xCC:
                guard length >= 8 else { throw Problem.malformed("frame header of \(length) bytes") }
                if frame == nil {
                    frame = Frame(marker: marker, precision: Int(bytes[body]),
                                  width: Int(bytes[body + 3]) << 8 | Int(bytes[body + 4]),
                                  height: Int(bytes[body + 1]) << 8 | Int(bytes[body + 2]),
                                  components: Int(bytes[body + 5]))
                }
                i += length
            case 0xDA:
                scans += 1
                i += length
                let dataStart = i
                // Entropy-coded data runs to the next marker that is not a stuffed 0xFF00 or a
                // restart marker.
                while i < n {
                    if bytes[i] == 0xFF, i + 1 < n {
                        let next = bytes[i + 1]
                        if next == 0x00 || (0xD0...0xD7).contains(next) { i += 2; continue }
                        if next == 0xFF { i += 1; continue }
                        break
                    }
                    i += 1
                }
                scanDataBytes += i - dataStart
            default:
                i += length
            }
        }
    }
}

func hex(_ b: UInt8) -> String {
    let digits = Array("0123456789ABCDEF")
    return String([digits[Int(b >> 4)], digits[Int(b & 15)]])
}
