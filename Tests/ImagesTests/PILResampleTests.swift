import Images
import TestSupport
import XCTest

/// PIL's `Image.resize` (bicubic, bilinear, nearest; up, down, one axis) reproduced byte for byte.
final class PILResampleTests: XCTestCase {
    func testResizeMatchesPILByteForByte() throws {
        let manifest = try ImageManifest.load()
        XCTAssertGreaterThanOrEqual(manifest.resize.count, 20)
        var total = ByteMatch()
        for item in manifest.resize {
            let input: RGBImage
            if let seed = item.input.lcgSeed {
                input = try lcgImage(seed: seed, width: item.input.width, height: item.input.height)
            } else {
                input = try ImageDecoder.decode(path: imageFixture(item.input.image!))
            }
            let filter = try XCTUnwrap(Interpolation(rawValue: item.filter))
            let out = try PILResample.resize(input, width: item.width, height: item.height, filter: filter)
            let (expected, shape) = try npyBytes(item.expected)
            XCTAssertEqual(shape, [item.height, item.width, 3], item.expected)
            var m = ByteMatch()
            for (a, b) in zip(out.pixels, expected) { m.add(a, b) }
            XCTAssertEqual(out.pixels.count, expected.count, item.expected)
            XCTAssertEqual(m.identical, m.total, "\(item.expected): \(m)")
            total.add(m)
        }
        print("resize vs PIL: \(manifest.resize.count) cases, \(total)")
    }

    func testSameSizeIsIdentityAndBadSizesThrow() throws {
        let image = try lcgImage(seed: 3, width: 9, height: 5)
        XCTAssertEqual(try PILResample.resize(image, width: 9, height: 5, filter: .bicubic), image)
        XCTAssertThrowsError(try PILResample.resize(image, width: 0, height: 5, filter: .bilinear))
        XCTAssertThrowsError(try PILResample.resize(image, width: 5, height: -1, filter: .nearest))
    }

    /// A constant image stays constant under every filter and scale (weights are normalised).
    func testConstantImageStaysConstant() throws {
        let flat = try RGBImage(width: 17, height: 11, pixels: [UInt8](repeating: 201, count: 17 * 11 * 3))
        for filter in Interpolation.allCases {
            for (w, h) in [(5, 3), (40, 29), (17, 2), (1, 1)] {
                let out = try PILResample.resize(flat, width: w, height: h, filter: filter)
                XCTAssertTrue(out.pixels.allSatisfy { $0 == 201 }, "\(filter) \(w)x\(h)")
            }
        }
    }
}
