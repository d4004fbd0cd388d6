import Foundation
import Images
import TestSupport
import XCTest

/// Every valid fixture decodes to exactly what `np.asarray(Image.open(f).convert("RGB"))` gives.
final class DecodingTests: XCTestCase {
    func testEveryFixtureDecodesToPILsBytes() throws {
        let manifest = try ImageManifest.load()
        var jpeg = ByteMatch(), png = ByteMatch()
        var exactJPEG = 0, exactPNG = 0, jpegCount = 0, pngCount = 0
        for item in manifest.images {
            let image = try ImageDecoder.decode(path: imageFixture(item.file))
            XCTAssertEqual(image.width, item.width, item.file)
            XCTAssertEqual(image.height, item.height, item.file)
            let match = try compareRows(image, item.decoded)
            let exact = crc32(image.pixels) == item.decoded.crc32
            // The bar: identical for >= 99.9% of values and never more than 1 level apart.
            XCTAssertGreaterThanOrEqual(match.fraction, 0.999, "\(item.file) (\(item.kind)): \(match)")
            XCTAssertLessThanOrEqual(match.maxDiff, 1, "\(item.file) (\(item.kind)): \(match)")
            // Measured: bit-identical, JPEG included (same IDCT and upsampling as Pillow's libjpeg-turbo).
            XCTAssertTrue(exact, "\(item.file) (\(item.kind), PIL mode \(item.pilMode)): full image differs from PIL's; rows \(match)")
            if item.file.hasSuffix(".jpg") {
                jpeg.add(match); jpegCount += 1; if exact { exactJPEG += 1 }
            } else {
                png.add(match); pngCount += 1; if exact { exactPNG += 1 }
            }
        }
        print("decoding vs PIL \(manifest.pillow): JPEG \(exactJPEG)/\(jpegCount) files bit-identical, stored rows \(jpeg); PNG \(exactPNG)/\(pngCount) bit-identical, stored rows \(png)")
    }

    func testDecodingFromMemoryMatchesDecodingTheFile() throws {
        for name in ["china_257x171_q60_422.jpg", "china_41x29_rgba16.png"] {
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: imageFixture(name))))
            XCTAssertEqual(try ImageDecoder.decode(bytes, file: name), try ImageDecoder.decode(path: imageFixture(name)))
        }
    }

    func testSniffsByContentNotExtension() throws {
        let jpeg = try [UInt8](Data(contentsOf: URL(fileURLWithPath: imageFixture("flower_20x30_tiny.jpg"))))
        let png = try [UInt8](Data(contentsOf: URL(fileURLWithPath: imageFixture("flower_20x30_tiny.png"))))
        XCTAssertEqual(jpeg.withUnsafeBytes { ImageFormat.sniff($0) }, .jpeg)
        XCTAssertEqual(png.withUnsafeBytes { ImageFormat.sniff($0) }, .png)
        XCTAssertEqual(try ImageDecoder.decode(jpeg, file: "named.png").width, 20)
    }

    func testGrayAndCMYKBecomeRGBAsPILConvertsThem() throws {
        let gray = try ImageDecoder.decode(path: imageFixture("flower_200x150_gray.jpg"))
        for p in stride(from: 0, to: gray.pixelCount, by: 97) {
            XCTAssertEqual(gray.pixels[p * 3], gray.pixels[p * 3 + 1])
            XCTAssertEqual(gray.pixels[p * 3], gray.pixels[p * 3 + 2])
        }
        // 16-bit gray is PIL's mode I;16, whose conversion to RGB clips: the ramp 0..1023 is
        // its own value up to 255 and white above.
        let ramp = try ImageDecoder.decode(path: imageFixture("ramp_50x30_l16.png"))
        for i in 0..<(50 * 30) {
            XCTAssertEqual(Int(ramp.pixels[i * 3]), min(i * 7 % 1024, 255), "pixel \(i)")
        }
    }
}
