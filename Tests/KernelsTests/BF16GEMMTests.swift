import Formats
@testable import Kernels
import TensorStore
import TestSupport
import XCTest

/// The bf16 GEMM (`PackedLinearWeights` at `.bf16`): its rounding is torch's (Fixtures/conversion
/// holds torch's own f32 → bf16 conversions), and on every kernel path it equals a reference computed here from the
/// rounding rule: inputs and weights rounded to bf16, products and sums in double, from the bias.
/// On the AVX-512 path every bf16 tile the CPU has runs: AMX, AVX512_BF16 and the widening one.
final class BF16GEMMTests: XCTestCase {
    func load(_ name: String) throws -> [Float] { try NPY.read(path: fixturePath("conversion/\(name).npy")).floats() }

    func testRoundingMatchesTorch() throws {
        let values = try NPY.read(path: fixturePath("conversion/f32_values.npy")).floats()
        let bits = try NPY.read(path: fixturePath("conversion/bf16_bits.npy"))
        let widened = try load("bf16_to_f32")
        let expected: [UInt16] = bits.withContiguousBytes { Array($0.bindMemory(to: UInt16.self)) }
        XCTAssertEqual(values.count, expected.count)
        XCTAssertGreaterThan(values.count, 1000)
        for (i, v) in values.enumerated() {
            // NaN payloads may differ (torch's vectorised path gives 0xFFFF, c10's scalar one 0x7FC0);
            // both must be NaN. Every other value bit for bit.
            let got = BFloat16.bits(v)
            if v.isNaN {
                XCTAssertTrue(BFloat16.float(got).isNaN && BFloat16.float(expected[i]).isNaN, "value \(i): NaN")
            } else {
                XCTAssertEqual(got, expected[i], "value \(i): \(v) (bits \(String(v.bitPattern, radix: 16)))")
            }
            let back = BFloat16.float(expected[i])
            XCTAssertTrue(back.bitPattern == widened[i].bitPattern || (back.isNaN && widened[i].isNaN), "widening \(i)")
        }
    }

    struct Problem {
        let rows: Int, k: Int, n: Int
        let x: [Float], w: [Float], bias: [Float]

        init(_ rows: Int, _ k: Int, _ n: Int, seed: UInt32) {
            self.rows = rows
            self.k = k
            self.n = n
            x = SyntheticInput.values(seed: seed, count: rows * k)
            w = SyntheticInput.values(seed: seed + 1, count: n * k)
            bias = SyntheticInput.values(seed: seed + 2, count: n)
        }

        func run(threads: Int) -> [Float] {
            let packed = w.withUnsafeBufferPointer {
                PackedLinearWeights(weight: $0.baseAddress!, outFeatures: n, inFeatures: k, precision: .bf16)
            }
            var out = [Float](repeating: 0, count: rows * n)
            out.withUnsafeMutableBufferPointer { o in
                linearForward(out: o.baseAddress!, inp: x, weight: packed, bias: bias, rows: rows,
                              parallelism: Parallelism(threads: threads))
            }
            return out
        }

        /// (reference, Σ |terms|) per output: bias + Σ bf16(x)·bf16(w) in double.
        func reference() -> (values: [Double], magnitude: [Double]) {
            let xr = x.map { Double(BFloat16.round($0)) }, wr = w.map { Double(BFloat16.round($0)) }
            var v = [Double](repeating: 0, count: rows * n), m = v
            for r in 0..<rows {
                for o in 0..<n {
                    var s = Double(bias[o]), a = abs(Double(bias[o]))
                    for i in 0..<k {
                        let p = xr[r * k + i] * wr[o * k + i]
                        s += p
                        a += abs(p)
                    }
                    v[r * n + o] = s
                    m[r * n + o] = a
                }
            }
            return (v, m)
        }
    }

    // Odd k (a half-empty last pair), tails of tiles and panels, k over one and two k blocks (384
    // pairs), the row block (144) crossed.
    static let sizes: [(Int, Int, Int)] = [(1, 1, 1), (5, 3, 7), (7, 33, 33), (13, 100, 70), (61, 301, 259),
                                           (150, 769, 97), (40, 1537, 64)]

    /// Float accumulation of k + 1 terms: |error| ≤ (k + 1)·2⁻²⁴·Σ|terms| (the classical bound for
    /// recursive summation, first order; exact products). The test asks for that bound.
    func check(_ label: String) {
        for (i, (m, k, n)) in Self.sizes.enumerated() {
            let p = Problem(m, k, n, seed: UInt32(300 + 10 * i))
            let got = p.run(threads: 2)
            let (ref, mag) = p.reference()
            var worst = 0.0
            for j in got.indices {
                let bound = Double(k + 1) * 0x1p-24 * mag[j]
                let err = abs(Double(got[j]) - ref[j])
                worst = max(worst, bound > 0 ? err / bound : err)
            }
            XCTAssertLessThanOrEqual(worst, 1, "\(label) \(m)x\(k)x\(n): error / bound \(worst)")
            XCTAssertEqual(got, p.run(threads: 1), "\(label) \(m)x\(k)x\(n): one thread vs the column split")
        }
    }

    func testBF16GEMMMatchesRoundedReferenceOnEveryPath() {
        KernelPaths.each { path in
            guard path == .avx512 else {
                check("\(path.rawValue) (\(KernelDispatch.bf16Kernel))")
                return
            }
            // Every bf16 tile this CPU has: AMX, vdpbf16ps, the widening fallback.
            defer { KernelDispatch.limitBF16Tile(.amx) }
            for tile in KernelDispatch.supportedBF16Tiles {
                XCTAssertEqual(KernelDispatch.limitBF16Tile(tile), tile)
                check("avx512 \(tile) (\(KernelDispatch.bf16Kernel))")
            }
        }
    }

    func testBF16WeightsArePackedInHalfTheBytes() {
        let w = SyntheticInput.values(seed: 5, count: 64 * 384)
        let f32 = w.withUnsafeBufferPointer { PackedLinearWeights(weight: $0.baseAddress!, outFeatures: 64, inFeatures: 384) }
        let bf16 = w.withUnsafeBufferPointer {
            PackedLinearWeights(weight: $0.baseAddress!, outFeatures: 64, inFeatures: 384, precision: .bf16)
        }
        XCTAssertEqual(f32.precision, .f32)
        XCTAssertEqual(bf16.precision, .bf16)
        XCTAssertEqual(bf16.byteCount * 2, f32.byteCount)
        // Packing weights already in bf16 gives the same words as rounding their float values.
        let bits = w.map(BFloat16.bits)
        let fromBits = bits.withUnsafeBufferPointer {
            PackedLinearWeights(bf16Weight: $0.baseAddress!, outFeatures: 64, inFeatures: 384)
        }
        XCTAssertEqual(Array(UnsafeBufferPointer(start: fromBits.panels.pointer, count: fromBits.panels.count)).map(\.bitPattern),
                       Array(UnsafeBufferPointer(start: bf16.panels.pointer, count: bf16.panels.count)).map(\.bitPattern))
    }

    /// bf16 bits as a file may hold them (signed zeros, subnormals, infinities, NaNs of either
    /// sign and any payload) pack as their Float32 widening does when rounded at `.bf16`: the same
    /// words, every NaN as torch's 0x7FC0. A bf16 checkpoint packed from its bits then runs
    /// bit for bit as the same weights widened at load.
    func testBF16BitsPackAsTheirWideningRounded() {
        let (n, k) = (37, 21)
        var bits = SyntheticInput.values(seed: 9, count: n * k).map(BFloat16.bits)
        let special: [UInt16] = [0x0000, 0x8000, 0x0001, 0x807F, 0x7F80, 0xFF80, 0x7FC0, 0xFFC0, 0x7F81, 0xFFFF, 0x7FBF, 0xFFA5]
        for (j, b) in special.enumerated() { bits[j * 61 % (n * k)] = b }
        let fromBits = bits.withUnsafeBufferPointer { PackedLinearWeights(bf16Weight: $0.baseAddress!, outFeatures: n, inFeatures: k) }
        let widened = bits.map(BFloat16.float)
        let rounded = widened.withUnsafeBufferPointer {
            PackedLinearWeights(weight: $0.baseAddress!, outFeatures: n, inFeatures: k, precision: .bf16)
        }
        func words(_ w: PackedLinearWeights) -> [UInt32] {
            Array(UnsafeBufferPointer(start: w.panels.pointer, count: w.panels.count)).map(\.bitPattern)
        }
        XCTAssertEqual(widened.filter(\.isNaN).count, 6)
        let a = words(fromBits), b = words(rounded)
        XCTAssertEqual(a.count, b.count)
        let differing = a.indices.filter { a[$0] != b[$0] }.map { String(a[$0], radix: 16) + " vs " + String(b[$0], radix: 16) }
        XCTAssertEqual(differing, [], "packed words from the bits vs from the widened floats")
    }
}
