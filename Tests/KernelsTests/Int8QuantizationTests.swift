import Kernels
import XCTest

/// The int8 rule (`Int8Quantization`) on rows whose answers can be worked out by hand: the scale
/// is max|row| / 127 (1 for a zero row), values round half to even and stay within ±127.
final class Int8QuantizationTests: XCTestCase {
    func testRowsQuantizeWithTheirOwnScaleAndRoundHalfToEven() {
        let rows: [Float] = [
            127, 2.5, -2.5, 3.5, 0, 0.5,      // scale 1: ties go to the even neighbour
            -254, 1, 3, -5, 253, 254,         // scale 2: 0.5 -> 0, 1.5 -> 2, -2.5 -> -2, 126.5 -> 126
            0, 0, 0, 0, 0, 0,                 // all zero: scale 1
        ]
        let (q, scales) = Int8Quantization.perRow(rows, rows: 3, cols: 6)
        XCTAssertEqual(scales, [1, 2, 1])
        XCTAssertEqual(q, [127, 2, -2, 4, 0, 0,
                           -127, 0, 2, -2, 126, 127,
                           0, 0, 0, 0, 0, 0])
    }

    func testPerChannelIsPerRowOfTheOutInLayout() {
        // (out 2, in 3): each output channel's largest magnitude maps to ±127.
        let w: [Float] = [0.1, -0.2, 0.05, 254, 127, -63]
        let (q, scales) = Int8Quantization.perChannel(weight: w, out: 2, in: 3)
        XCTAssertEqual(scales.map(\.bitPattern), [Float(0.2) / 127, 2].map(\.bitPattern))
        XCTAssertEqual(q[1], -127)
        XCTAssertEqual(Array(q[3...]), [127, 64, -32], "63.5 -> 64 and -31.5 -> -32 (even)")
    }

    func testValuesNeverLeaveTheSymmetricRange() {
        // Seeded LCG rows with magnitudes spanning 1e-30 to 1e30: q stays within ±127, the row's
        // largest magnitude maps to ±127, and dequantizing is within half a step.
        var state: UInt64 = 0x2545F4914F6CDD1D
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2_000_001 - 1_000_000) / 1_000_000
        }
        for exponent in stride(from: -30, through: 30, by: 10) {
            let values = (0..<64).map { _ in next() * Float(pow(10, Double(exponent))) }
            let (q, scales) = Int8Quantization.perRow(values, rows: 4, cols: 16)
            for r in 0..<4 {
                let row = Array(values[(r * 16)..<((r + 1) * 16)]), qs = Array(q[(r * 16)..<((r + 1) * 16)])
                XCTAssertTrue(qs.allSatisfy { $0 >= -127 })
                XCTAssertEqual(qs.map { abs(Int($0)) }.max(), 127)
                for (x, v) in zip(row, qs) { XCTAssertLessThanOrEqual(abs(Float(v) * scales[r] - x), 0.5001 * scales[r]) }
            }
        }
    }
}
