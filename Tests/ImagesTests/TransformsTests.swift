import Images
import TensorStore
import TestSupport
import XCTest

/// torchvision's Resize sizing, CenterCrop and ToTensor/Normalize arithmetic.
final class TransformsTests: XCTestCase {
    /// torchvision's ToTensor + Normalize applied to every value 0...255 (normalization/*.npy)
    /// is reproduced bit for bit, so the elementwise step is exact for every possible input.
    func testNormalizationTableIsTorchvisionsBitForBit() throws {
        let manifest = try ImageManifest.load()
        for (name, n) in manifest.normalization {
            let (expected, shape) = try npyFloats(n.table)
            XCTAssertEqual(shape, [3, 256])
            let table = try Transforms.normalizationTable(mean: n.mean, std: n.std)
            XCTAssertEqual(table.map(\.bitPattern), expected.map(\.bitPattern), name)
        }
    }

    func testToTensorIsValueOver255() throws {
        let image = try RGBImage(width: 2, height: 1, pixels: [0, 128, 255, 1, 2, 3])
        let t = Transforms.toTensor(image)
        XCTAssertEqual(t.shape.dims, [3, 1, 2])
        let expected: [Float] = [0, Float(1) / 255, Float(128) / 255, Float(2) / 255, 1, Float(3) / 255]
        XCTAssertEqual(t.floats(), expected)
    }

    /// `_compute_resized_output_size`: short side to n, long side int(n * long / short).
    func testResizedSizeFollowsTorchvision() throws {
        func size(_ w: Int, _ h: Int, _ s: ResizeSize) throws -> [Int] {
            let r = try Transforms.resizedSize(width: w, height: h, to: s)
            return [r.height, r.width]
        }
        XCTAssertEqual(try size(320, 272, .shorterSide(256)), [256, 301])        // int(256 * 320 / 272) = 301
        XCTAssertEqual(try size(264, 330, .shorterSide(256)), [320, 256])
        XCTAssertEqual(try size(257, 171, .shorterSide(256)), [256, 384])        // 384.74… → 384
        XCTAssertEqual(try size(20, 30, .shorterSide(256)), [384, 256])
        XCTAssertEqual(try size(100, 100, .shorterSide(7)), [7, 7])
        XCTAssertEqual(try size(264, 330, .shorterSide(200, maxSize: 240)), [240, 192])
        XCTAssertEqual(try size(50, 60, .exact(ImageSize(height: 3, width: 9))), [3, 9])
        XCTAssertThrowsError(try size(50, 60, .shorterSide(0)))
        XCTAssertThrowsError(try size(50, 60, .shorterSide(200, maxSize: 200)))
    }

    /// CenterCrop: offsets round half to even; a crop larger than the image pads with zeros,
    /// the extra row or column going to the bottom or right.
    func testCenterCropRoundingAndPadding() throws {
        // 5 x 4 image whose pixel (x, y) has R = 10 * y + x + 1.
        var px: [UInt8] = []
        for y in 0..<4 { for x in 0..<5 { px += [UInt8(10 * y + x + 1), 0, 0] } }
        let image = try RGBImage(width: 5, height: 4, pixels: px)
        func red(_ i: RGBImage) -> [[Int]] { (0..<i.height).map { y in (0..<i.width).map { Int(i[x: $0, y: y, c: 0]) } } }
        // (5 - 2) / 2 = 1.5 → 2; (4 - 1) / 2 = 1.5 → 2.
        XCTAssertEqual(red(try Transforms.centerCrop(image, to: ImageSize(height: 1, width: 2))), [[23, 24]])
        // (5 - 4) / 2 = 0.5 → 0; (4 - 3) / 2 = 0.5 → 0.
        XCTAssertEqual(red(try Transforms.centerCrop(image, to: ImageSize(height: 3, width: 4))),
                       [[1, 2, 3, 4], [11, 12, 13, 14], [21, 22, 23, 24]])
        // Height 4 → 7: pad top 1, bottom 2. Width 5 → 2: offset round(1.5) = 2.
        XCTAssertEqual(red(try Transforms.centerCrop(image, to: ImageSize(height: 7, width: 2))),
                       [[0, 0], [3, 4], [13, 14], [23, 24], [33, 34], [0, 0], [0, 0]])
        XCTAssertThrowsError(try Transforms.centerCrop(image, to: ImageSize(height: 0, width: 2)))
    }

    func testInvalidNormalizationIsRefused() {
        XCTAssertThrowsError(try Transforms.normalizationTable(mean: [0.5, 0.5], std: [1, 1, 1]))
        XCTAssertThrowsError(try Transforms.normalizationTable(mean: [0.5, 0.5, 0.5], std: [1, 0, 1]))
    }
}
