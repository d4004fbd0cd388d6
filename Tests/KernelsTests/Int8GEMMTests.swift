@testable import Kernels
import TensorStore
import TestSupport
import XCTest

/// The int8 GEMM (`PackedLinearWeights` at `.int8`) against the quantization rule written out here
/// in Swift: weights per output channel and inputs per row, scale = max |v| / 127 (1 when that is
/// 0), q = clamp(rint(v / scale), ±127); the products summed exactly (Int64 here, int32 in the
/// kernels), then y = (Float(acc) · s_a) · s_w + bias. Every step is exact or one IEEE operation in
/// a fixed order, so every path and tile must give these floats bit for bit, one thread or two.
final class Int8GEMMTests: XCTestCase {
    /// The rule's scale and values for one row.
    static func quantize(_ row: ArraySlice<Float>) -> (scale: Float, q: [Int]) {
        let amax = row.reduce(Float(0)) { Swift.max($0, abs($1)) }
        let scale = amax / 127 == 0 ? 1 : amax / 127
        return (scale, row.map { v in Int(Swift.min(Swift.max(v / scale, -127), 127).rounded(.toNearestOrEven)) })
    }

    struct Problem {
        let rows: Int, k: Int, n: Int
        var x: [Float], w: [Float], bias: [Float]

        init(_ rows: Int, _ k: Int, _ n: Int, seed: UInt32) {
            self.rows = rows
            self.k = k
            self.n = n
            x = SyntheticInput.values(seed: seed, count: rows * k)
            w = SyntheticInput.values(seed: seed + 1, count: n * k)
            bias = SyntheticInput.values(seed: seed + 2, count: n)
        }

        /// Rows and weight rows that stress the rule: all zero, ±1 (every value ±127 after
        /// quantization), huge and subnormal magnitudes, values between steps; weight rows all
        /// zero, ±2.5 (±127), small.
        mutating func addCorners() {
            func setRow(_ a: inout [Float], _ r: Int, _ f: (Int) -> Float) { for i in 0..<k { a[r * k + i] = f(i) } }
            if rows > 4 {
                setRow(&x, 0) { _ in 0 }
                setRow(&x, 1) { i in i % 2 == 0 ? 1 : -1 }
                setRow(&x, 2) { i in Float(i % 7 - 3) * 1e30 }
                // A few subnormal ulps: max / 127 underflows to 0, so the scale is 1 and every q is 0.
                setRow(&x, 3) { i in Float(i % 5 - 2) * Float(bitPattern: 2) }
                setRow(&x, 4) { i in Float(i % 255 - 127) + (i % 3 == 0 ? 0.5 : 0) }
            }
            if n > 3 {
                setRow(&w, 0) { _ in 0 }
                setRow(&w, 1) { i in i % 3 == 0 ? -2.5 : 2.5 }
                setRow(&w, 2) { i in Float((i * 37) % 255 - 127) / 127 * 3e-3 }
            }
        }

        func packed() -> PackedLinearWeights {
            w.withUnsafeBufferPointer { PackedLinearWeights(weight: $0.baseAddress!, outFeatures: n, inFeatures: k, precision: .int8) }
        }

        func run(_ packed: PackedLinearWeights, threads: Int, epilogue: (UnsafeMutablePointer<Float>) -> LinearEpilogue = { _ in .store },
                 residual: [Float]? = nil) -> [Float] {
            var out = [Float](repeating: 0, count: rows * n)
            var res = residual ?? []
            out.withUnsafeMutableBufferPointer { o in
                res.withUnsafeMutableBufferPointer { r in
                    linearForward(out: o.baseAddress!, inp: x, weight: packed, bias: bias, rows: rows,
                                  epilogue: residual == nil ? .store : epilogue(r.baseAddress!),
                                  parallelism: Parallelism(threads: threads))
                }
            }
            return residual == nil ? out : res
        }

        /// The rule's outputs, y[r, o].
        func reference() -> [Float] {
            let qa = (0..<rows).map { Int8GEMMTests.quantize(x[$0 * k..<($0 + 1) * k]) }
            let qw = (0..<n).map { Int8GEMMTests.quantize(w[$0 * k..<($0 + 1) * k]) }
            var y = [Float](repeating: 0, count: rows * n)
            for r in 0..<rows {
                for o in 0..<n {
                    var acc = 0
                    for i in 0..<k { acc += qa[r].q[i] * qw[o].q[i] }
                    XCTAssertLessThan(abs(acc), 1 << 31)
                    y[r * n + o] = (Float(acc) * qa[r].scale) * qw[o].scale + bias[o]
                }
            }
            return y
        }
    }

    // Odd k (a partial last quad), tails of tiles (12, 16, 4 rows) and panels, k over one, two and
    // three k blocks (384 quads), the row block (144) crossed.
    static let sizes: [(Int, Int, Int)] = [(1, 1, 1), (5, 3, 7), (7, 33, 33), (13, 100, 70), (17, 64, 32), (61, 301, 259),
                                           (150, 769, 97), (40, 1537, 64), (9, 3079, 40)]

    func assertIdentical(_ got: [Float], _ want: [Float], _ what: String) {
        XCTAssertEqual(got.count, want.count, what)
        var mismatches = 0, first = ""
        for (i, (g, r)) in zip(got, want).enumerated() where !(g.bitPattern == r.bitPattern || (g.isNaN && r.isNaN)) {
            if mismatches == 0 { first = "element \(i): \(g) vs \(r)" }
            mismatches += 1
        }
        XCTAssertEqual(mismatches, 0, "\(what): \(mismatches) outputs differ from the rule, first \(first)")
    }

    func check(_ label: String) {
        for (i, (m, k, n)) in Self.sizes.enumerated() {
            var p = Problem(m, k, n, seed: UInt32(700 + 10 * i))
            p.addCorners()
            let packed = p.packed()
            let want = p.reference()
            let what = "\(label) \(m)x\(k)x\(n)"
            assertIdentical(p.run(packed, threads: 1), want, what + " one thread")
            assertIdentical(p.run(packed, threads: 2), want, what + " column split")
            // The residual epilogue: x + gamma ⊙ y, the product rounded first (as the f32 epilogue).
            let gamma = SyntheticInput.values(seed: UInt32(900 + i), count: n)
            let x0 = SyntheticInput.values(seed: UInt32(950 + i), count: m * n)
            let updated = gamma.withUnsafeBufferPointer { g in
                p.run(packed, threads: 2, epilogue: { .residual($0, gamma: g.baseAddress!, norm: nil) }, residual: x0)
            }
            assertIdentical(updated, (0..<m * n).map { j in x0[j] + gamma[j % n] * want[j] }, what + " residual")
        }
    }

    func testInt8GEMMIsTheQuantizationRuleOnEveryPathAndTile() {
        KernelPaths.each { path in
            guard path == .avx512 else {
                check("\(path.rawValue) (\(KernelDispatch.int8Kernel))")
                return
            }
            defer { KernelDispatch.limitInt8Tile(.amx) }
            for tile in KernelDispatch.supportedInt8Tiles {
                XCTAssertEqual(KernelDispatch.limitInt8Tile(tile), tile)
                check("avx512 \(tile) (\(KernelDispatch.int8Kernel))")
            }
        }
    }

    /// A NaN in an input row gives NaN outputs on that row (its scale is NaN) on every path, and
    /// leaves the other rows as they were.
    func testNaNInputRowGivesNaNOutputs() {
        var p = Problem(6, 40, 35, seed: 41)
        let clean = p.reference()
        p.x[2 * 40 + 17] = .nan
        let packed = p.packed()
        KernelPaths.each { path in
            let got = p.run(packed, threads: 1)
            for r in 0..<6 {
                for o in 0..<35 {
                    let v = got[r * 35 + o]
                    if r == 2 { XCTAssertTrue(v.isNaN, "\(path) row 2 col \(o): \(v)") } else {
                        XCTAssertEqual(v.bitPattern, clean[r * 35 + o].bitPattern, "\(path) row \(r) col \(o)")
                    }
                }
            }
        }
    }

    func testInt8PackingKeepsTheChannelScalesInAQuarterOfTheBytes() {
        var p = Problem(1, 384, 64, seed: 5)
        p.addCorners()
        let f32 = p.w.withUnsafeBufferPointer { PackedLinearWeights(weight: $0.baseAddress!, outFeatures: 64, inFeatures: 384) }
        let int8 = p.packed()
        XCTAssertEqual(int8.precision, .int8)
        // Panels a quarter of the float ones, plus the AMX read padding and two values per column.
        XCTAssertEqual(int8.byteCount, f32.byteCount / 4 + 16 * 32 * 4 + 2 * 64 * 4)
        let want = (0..<64).map { Self.quantize(p.w[$0 * 384..<($0 + 1) * 384]).scale }
        XCTAssertEqual(int8.int8Scales.map(\.bitPattern), want.map(\.bitPattern))
        XCTAssertEqual(int8.int8Scales[0], 1, "an all-zero channel has scale 1")
        XCTAssertEqual(int8.int8Scales[1], 2.5 / 127)
    }

    /// The per-tensor test hook gives the rule with one scale for the whole input (the measured
    /// alternative to per-token scales), and is off again afterwards.
    func testTensorScaleHookUsesOneScaleForTheWholeInput() {
        var p = Problem(20, 50, 40, seed: 77)
        p.x[3 * 50 + 4] = 9  // one large value: every row's scale becomes 9 / 127
        let packed = p.packed()
        let qw = (0..<40).map { Self.quantize(p.w[$0 * 50..<($0 + 1) * 50]) }
        let scale: Float = 9 / 127
        var want = [Float](repeating: 0, count: 20 * 40)
        for r in 0..<20 {
            let q = p.x[r * 50..<(r + 1) * 50].map { Int(Swift.min(Swift.max($0 / scale, -127), 127).rounded(.toNearestOrEven)) }
            for o in 0..<40 {
                var acc = 0
                for i in 0..<50 { acc += q[i] * qw[o].q[i] }
                want[r * 40 + o] = (Float(acc) * scale) * qw[o].scale + p.bias[o]
            }
        }
        KernelDispatch.useInt8TensorScale(true)
        defer { KernelDispatch.useInt8TensorScale(false) }
        assertIdentical(p.run(packed, threads: 1), want, "per-tensor, one thread")
        assertIdentical(p.run(packed, threads: 2), want, "per-tensor, column split")
        KernelDispatch.useInt8TensorScale(false)
        assertIdentical(p.run(packed, threads: 1), p.reference(), "per-token again")
    }
}
