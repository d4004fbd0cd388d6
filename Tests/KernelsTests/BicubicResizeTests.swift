import Kernels
import TensorStore
import XCTest

/// Both bicubic forms against `F.interpolate` on 37×37 and 16×16 grids (the hub and a 224-trained
/// position table), up and down, square and not, with the 0.1-offset scale factors DINOv2 passes.
final class BicubicResizeTests: XCTestCase {
    func testEveryInterpolationCaseMatchesPyTorch() throws {
        let cases = try KernelFixtures.cases(op: "interpolate")
        XCTAssertGreaterThanOrEqual(cases.count, 18)
        var worst: Float = 0
        for c in cases {
            let input = try c.tensor("input"), expected = try c.tensor("output")
            XCTAssertEqual(input.shape.rank, 4, c.name)
            let (n, ch, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
            let oh = expected.shape[2], ow = expected.shape[3]
            let antialias = c.bool("antialias") ?? false
            var factors: (height: Double, width: Double)? = nil
            if let s = c.doubles("scale_factor"), s.count == 2 {
                factors = (s[0], s[1])
                XCTAssertEqual(BicubicResize.outputSize(inputSize: h, scaleFactor: s[0]), oh, c.name)
                XCTAssertEqual(BicubicResize.outputSize(inputSize: w, scaleFactor: s[1]), ow, c.name)
            }
            let out = BicubicResize.resizePlanes(input.floats(), planes: n * ch, height: h, width: w,
                                                 outHeight: oh, outWidth: ow, scaleFactors: factors, antialias: antialias)
            let err = KernelFixtures.maxAbsError(out, expected.floats())
            print("bicubic \(c.name): max abs error \(err)")
            XCTAssertLessThanOrEqual(err, 1e-6, c.name)
            worst = max(worst, err)
        }
        print("bicubic: worst max abs error \(worst) over \(cases.count) cases")
    }

    func testAntialiasedResizeToSameSizeIsACopy() {
        let axis = BicubicResize.antialiasedCubicAxis(inputSize: 7, outputSize: 7)
        XCTAssertTrue(axis.isCopy)
        let x = SyntheticInput.values(seed: 3, count: 2 * 7 * 7)
        XCTAssertEqual(BicubicResize.resizePlanes(x, planes: 2, height: 7, width: 7, outHeight: 7, outWidth: 7, antialias: true), x)
    }
}
