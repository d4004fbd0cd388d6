import Foundation
import Images
import TestSupport
import XCTest

/// Fuzzer-found images (Fixtures/hostile/jpeg-*) and headers that declare far more pixels than
/// their data holds: each is refused from the header with a typed one-line error, before the
/// decoder allocates or converts the declared size.
final class HostileImageTests: XCTestCase {
    /// Issue 15, fuzz-jpeg: 39 bytes declaring a 158x65476 CMYK frame with no scan at all timed
    /// out: the full CMYK buffer was allocated, decoded by libjpeg and converted to RGB.
    func testHugeDeclaredCMYKFrameWithoutScanIsRefusedBeforeDecoding() {
        let path = fixturePath("hostile/jpeg-cmyk-huge-declared.jpg")
        let start = Date()
        XCTAssertThrowsError(try ImageDecoder.decode(path: path)) { error in
            guard case let .corrupt(file, detail)? = error as? ImageError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, path)
            XCTAssertTrue(detail.contains("no scan"), detail)
            XCTAssertFalse("\(error)".contains("\n"))
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 0.1)
    }

    /// The same frame with one scan of 4 bytes: libjpeg would pad 10 million pixels of garbage
    /// and only warn; the data cannot hold them, so it is refused as truncated.
    func testScanDataTooShortForTheDeclaredSizeIsTruncated() throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixturePath("hostile/jpeg-cmyk-huge-declared.jpg"))))
        XCTAssertEqual(Array(bytes.suffix(2)), [0xFF, 0xD9])
        // SOS for the frame's 4 components, then 4 bytes of entropy-coded data, before EOI.
        let sos: [UInt8] = [0xFF, 0xDA, 0x00, 0x0E, 0x04, 0x01, 0x00, 0x22, 0x00, 0x51, 0x00, 0x31, 0x00, 0x00, 0x3F, 0x00,
                            0x12, 0x34, 0x56, 0x78]
        bytes.insert(contentsOf: sos, at: bytes.count - 2)
        XCTAssertThrowsError(try ImageDecoder.decode(bytes, file: "short-scan.jpg")) { error in
            guard case let .truncated(file, detail)? = error as? ImageError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, "short-scan.jpg")
            XCTAssertTrue(detail.contains("4 bytes of scan data cannot hold 158x65476 pixels"), detail)
        }
    }

    /// A warning followed by a fatal error: TurboJPEG reports both as TJERR_WARNING, and the
    /// undecoded buffer was returned as the image. Junk before SOS (a warning), then a
    /// component ID the frame does not have (fatal).
    func testFatalErrorAfterAWarningIsNotTakenForAWarning() throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: imageFixture("china_320x272_q90_420.jpg"))))
        guard let sos = (0..<(bytes.count - 1)).first(where: { bytes[$0] == 0xFF && bytes[$0 + 1] == 0xDA }) else {
            return XCTFail("no SOS")
        }
        bytes[sos + 5] = 0x22                                  // first component selector of the scan
        bytes.insert(contentsOf: [0x00, 0x00, 0x00], at: sos)  // 3 extraneous bytes before the marker
        XCTAssertThrowsError(try ImageDecoder.decode(bytes, file: "bad-sos.jpg")) { error in
            guard case let .corrupt(file, detail)? = error as? ImageError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, "bad-sos.jpg")
            XCTAssertTrue(detail.contains("Invalid component ID 34 in SOS"), detail)
        }
        // The warning alone still decodes, as in PIL.
        bytes[sos + 3 + 5] = 0x01
        let image = try ImageDecoder.decode(bytes, file: "junk.jpg")
        XCTAssertEqual([image.width, image.height], [320, 272])
    }

    /// A PNG header declaring 9000x9000 RGBA with 20 bytes of IDAT: deflate cannot expand that
    /// to 324 MB, so it is truncated, said before libpng allocates the rows.
    func testPNGDataTooShortForTheDeclaredSizeIsTruncated() throws {
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        func chunk(_ type: String, _ body: [UInt8]) {
            let length = UInt32(body.count)
            png += [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
            let typed = Array(type.utf8) + body
            png += typed
            let crc = crc32(typed)
            png += [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)]
        }
        chunk("IHDR", [0, 0, 0x23, 0x28, 0, 0, 0x23, 0x28, 8, 6, 0, 0, 0])   // 9000x9000, 8-bit RGBA
        chunk("IDAT", [UInt8](repeating: 0, count: 20))
        chunk("IEND", [])
        XCTAssertThrowsError(try ImageDecoder.decode(png, file: "bomb.png")) { error in
            guard case let .truncated(file, detail)? = error as? ImageError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, "bomb.png")
            XCTAssertTrue(detail.contains("20 bytes of image data (IDAT) cannot hold 9000x9000 pixels"), detail)
        }
    }

    /// Above PIL's MAX_IMAGE_PIXELS the error names the size and the variable that raises it.
    func testPixelLimitNamesTheSizeAndHowToRaiseIt() {
        var bytes = [UInt8](repeating: 0, count: 0)
        bytes += [0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0x03,
                  0x01, 0x11, 0x00, 0x02, 0x11, 0x00, 0x03, 0x11, 0x00, 0xFF, 0xD9]   // 65535x65535 RGB
        XCTAssertThrowsError(try ImageDecoder.decode(bytes, file: "big.jpg")) { error in
            guard case let .unsupported(_, detail)? = error as? ImageError else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("65535x65535 (4294836225 pixels) exceeds the \(maximumImagePixels)-pixel limit"), detail)
            XCTAssertTrue(detail.contains(maximumImagePixelsVariable), detail)
        }
    }
}
