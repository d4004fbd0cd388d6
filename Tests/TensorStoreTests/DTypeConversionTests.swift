import Formats
import TensorStore
import TestSupport
import XCTest

/// f32 -> f16 / bf16 rounding and widening, checked bit for bit against torch's own conversions
/// (Fixtures/conversion, made by Scripts/fixtures/conversion.py).
final class DTypeConversionTests: XCTestCase {
    func load(_ name: String) throws -> Tensor { try NPY.read(path: fixturePath("conversion/\(name).npy")) }

    func u16(_ t: Tensor) -> [UInt16] {
        t.withContiguousBytes { Array($0.bindMemory(to: UInt16.self)) }
    }

    func testFloat32ToBFloat16MatchesTorchBitForBit() throws {
        let x = try load("f32_values")
        let expected = u16(try load("bf16_bits"))
        let got = u16(try x.converted(to: .bf16))
        XCTAssertEqual(got.count, expected.count)
        for i in 0..<got.count where got[i] != expected[i] {
            // NaN payloads may differ; both must be NaN.
            let a = DTypeConversion.float(fromBFloat16: got[i]), b = DTypeConversion.float(fromBFloat16: expected[i])
            XCTAssertTrue(a.isNaN && b.isNaN, "element \(i): \(x.floats()[i]) -> \(String(got[i], radix: 16)) vs torch \(String(expected[i], radix: 16))")
        }
    }

    func testFloat32ToFloat16MatchesTorchBitForBit() throws {
        let x = try load("f32_values")
        let expected = u16(try load("f16_bits"))
        let got = u16(try x.converted(to: .f16))
        for i in 0..<got.count where got[i] != expected[i] {
            let a = DTypeConversion.float(fromHalf: got[i]), b = DTypeConversion.float(fromHalf: expected[i])
            XCTAssertTrue(a.isNaN && b.isNaN, "element \(i): \(x.floats()[i]) -> \(String(got[i], radix: 16)) vs torch \(String(expected[i], radix: 16))")
        }
    }

    func testWideningBackToFloat32IsExact() throws {
        let x = try load("f32_values")
        for (narrow, reference) in [(DType.bf16, "bf16_to_f32"), (.f16, "f16_to_f32")] {
            let back = try x.converted(to: narrow).converted(to: .f32).floats()
            let expected = try load(reference).floats()
            for i in 0..<back.count {
                XCTAssertTrue(back[i].bitPattern == expected[i].bitPattern || (back[i].isNaN && expected[i].isNaN),
                              "\(narrow) element \(i): \(back[i]) vs torch \(expected[i])")
            }
        }
    }

    func testIntegerConversionIsRefusedWithTypedError() throws {
        let t = try Tensor(shape: [2], floats: [1, 2])
        XCTAssertThrowsError(try t.converted(to: .i64)) { error in
            XCTAssertEqual(error as? TensorStoreError, .unsupportedConversion(from: .f32, to: .i64))
        }
    }
}
