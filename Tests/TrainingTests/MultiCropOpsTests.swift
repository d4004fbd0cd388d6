import Foundation
import Formats
import Images
import TensorStore
import TestSupport
@testable import Training
import XCTest

/// The augmentation's pixel operations against torchvision/PIL outputs for fixed parameters
/// (Fixtures/sslaug/ops.npz from Scripts/fixtures/ssl_augment.py): the 8-bit colour ops and the
/// flip are exact; the blur (torch's float32 convolution, summed in its own order) may differ by
/// one level where a value sits on a rounding edge.
final class MultiCropOpsTests: XCTestCase {
    var store = TensorStore()

    override func setUpWithError() throws {
        store = try NPZ.read(path: fixturePath("sslaug/ops.npz"))
    }

    func pixels(_ name: String) throws -> CropPixels {
        let t = try XCTUnwrap(store[name], "ops.npz has no \(name)")
        XCTAssertEqual(t.dtype, .u8)
        XCTAssertEqual(t.shape.rank, 3)
        let bytes = t.withContiguousBytes { Array($0) }
        return CropPixels(width: t.shape.dims[1], height: t.shape.dims[0], bytes: bytes)
    }

    func check(_ name: String, maxDifference: Int = 0, _ op: (inout CropPixels) -> Void) throws {
        var img = try pixels("input")
        op(&img)
        let expected = try pixels(name)
        XCTAssertEqual(img.width, expected.width)
        XCTAssertEqual(img.height, expected.height)
        var worst = 0, differing = 0
        for (a, b) in zip(img.bytes, expected.bytes) {
            let d = abs(Int(a) - Int(b))
            worst = max(worst, d)
            if d > 0 { differing += 1 }
        }
        XCTAssertLessThanOrEqual(worst, maxDifference, "\(name): \(differing) of \(img.bytes.count) values differ, by up to \(worst)")
    }

    func testBrightness() throws {
        try check("brightness_1.3125") { PILColorOps.adjustBrightness(&$0, factor: 1.3125) }
        try check("brightness_0.6875") { PILColorOps.adjustBrightness(&$0, factor: 0.6875) }
    }

    func testContrast() throws {
        try check("contrast_1.375") { PILColorOps.adjustContrast(&$0, factor: 1.375) }
        try check("contrast_0.625") { PILColorOps.adjustContrast(&$0, factor: 0.625) }
    }

    func testSaturation() throws {
        try check("saturation_1.1875") { PILColorOps.adjustSaturation(&$0, factor: 1.1875) }
        try check("saturation_0.8125") { PILColorOps.adjustSaturation(&$0, factor: 0.8125) }
    }

    func testHue() throws {
        try check("hue_0.0703125") { PILColorOps.adjustHue(&$0, factor: 0.0703125) }
        try check("hue_-0.09375") { PILColorOps.adjustHue(&$0, factor: -0.09375) }
    }

    func testGrayscaleSolarizeFlip() throws {
        try check("grayscale") { PILColorOps.grayscale(&$0) }
        try check("solarize_128") { PILColorOps.solarize(&$0, threshold: 128) }
        try check("hflip") { PILColorOps.flipHorizontally(&$0) }
    }

    func testJitterInTheGivenOrder() throws {
        try check("jitter_3021") {
            PILColorOps.adjustHue(&$0, factor: -0.046875)
            PILColorOps.adjustBrightness(&$0, factor: 0.8125)
            PILColorOps.adjustSaturation(&$0, factor: 1.125)
            PILColorOps.adjustContrast(&$0, factor: 1.25)
        }
    }

    func testGaussianBlur() throws {
        try check("blur_0.75", maxDifference: 1) { GaussianBlur.apply(&$0, size: 9, sigma: 0.75) }
        try check("blur_1.625", maxDifference: 1) { GaussianBlur.apply(&$0, size: 9, sigma: 1.625) }
    }

    /// torchvision's resized_crop on PIL: crop (i, j, h, w), then PIL's bicubic resize — exact.
    func testResizedCropGeometry() throws {
        let photo = try ImageDecoder.decode(path: fixturePath("images/china_320x272_q90_420.jpg"))
        var config = MultiCropConfig()
        config.globalCropsSize = 48
        let augmenter = try MultiCropAugmenter(config: config)
        var record = CropRecord(window: CropWindow(top: 37, left: 51, height: 150, width: 201))
        record.jitterOrder = nil
        let px = try augmenter.render(photo, kind: .global1, record: record)
        XCTAssertEqual(px.bytes, try pixels("resized_crop_37_51_150_201_48").bytes)
    }
}
