import Foundation
import Kernels
import TensorStore
import XCTest

/// Attention with bf16 products (`Precision.bf16Attention`, at `--precision bf16` and `int8`)
/// against the rule evaluated here in Double: Q, K and V rounded to bf16 (torch's rounding), the
/// scores and exp(s − max) from them, the exponentials rounded to bf16 as P V takes them, the sum
/// of the unrounded ones for the normalisation. On every kernel path, and on the AVX-512 path
/// every bf16 tile the CPU has (AMX, vdpbf16ps, widening); kept probabilities and the workspace
/// form both; token counts around the 64-query block and the tiles, head widths 64 and 33 (an
/// odd last pair, a one-column panel).
final class BF16AttentionTests: XCTestCase {
    struct Case {
        let batch: Int, tokens: Int, heads: Int, headDim: Int
        /// Query rows the reference is computed for (all of them but in the largest case).
        let rows: [Int]
        var dim: Int { heads * headDim }

        init(batch: Int, tokens: Int, heads: Int, headDim: Int, rows: [Int]? = nil) {
            (self.batch, self.tokens, self.heads, self.headDim) = (batch, tokens, heads, headDim)
            self.rows = rows ?? Array(0..<tokens)
        }

        /// Q and K scaled so that the scores spread over a few units (most rows dominated by a few
        /// keys, as in a trained model), V by a factor that gives every value a full float32
        /// mantissa: SyntheticInput's values are multiples of 1/64, which bf16 holds exactly.
        var qkv: [Float] {
            SyntheticInput.values(seed: UInt32(tokens * 7 + headDim), count: batch * tokens * 3 * dim).enumerated().map {
                let part = ($0.offset / dim) % 3
                return $0.element * (part == 2 ? 0.8137 : 1.3113)
            }
        }
    }

    static let cases = [
        Case(batch: 2, tokens: 1, heads: 2, headDim: 64), Case(batch: 2, tokens: 13, heads: 3, headDim: 64),
        Case(batch: 1, tokens: 13, heads: 2, headDim: 33), Case(batch: 1, tokens: 257, heads: 2, headDim: 64),
        Case(batch: 1, tokens: 257, heads: 1, headDim: 33),
        Case(batch: 1, tokens: 1369, heads: 1, headDim: 64, rows: [0, 1, 63, 64, 65, 511, 684, 685, 1024, 1367, 1368]),
    ]

    static let u = 0x1p-24

    /// What the kernel must give for row `i` of head `h` of image `b`: the output (headDim values)
    /// and the row's float probabilities, each with its error bound.
    struct Row {
        var out: [Double], bound: [Double], probs: [Double], probBound: [Double]
    }

    static func reference(_ c: Case, _ qkv: [Float], b: Int, h: Int, i: Int) -> Row {
        let n = c.tokens, d = c.dim, hd = c.headDim
        func at(_ t: Int, _ part: Int, _ j: Int) -> Double {
            Double(BFloat16.round(qkv[(b * n + t) * 3 * d + part * d + h * hd + j]))
        }
        let scale = 1 / Double(hd).squareRoot()
        var s = [Double](repeating: 0, count: n), mag = s
        for t in 0..<n {
            for j in 0..<hd {
                let p = at(i, 0, j) * at(t, 1, j)
                s[t] += p
                mag[t] += abs(p)
            }
            s[t] *= scale
            mag[t] *= scale
        }
        // The kernel's score t is off by at most (hd + 1)·u·mag[t] (float sums of exact products,
        // then the scale); exp(s − max) then by that, the max's error, and a few ulp of exp.
        let m = s.max()!, maxError = mag.map { Double(hd + 1) * u * $0 }.max()!
        let e = s.map { Foundation.exp($0 - m) }, sum = e.reduce(0, +)
        var out = [Double](repeating: 0, count: hd), weighted = out, ambiguous = out
        let windows = mag.map { Double(hd + 1) * u * $0 + maxError + 8 * u }
        for t in 0..<n {
            let window = windows[t]
            let rounded = Double(BFloat16.round(Float(e[t])))
            // Where e[t] is that close to a bf16 rounding boundary, the kernel may round it either way.
            let low = Double(BFloat16.round(Float(e[t] * (1 - window))))
            let high = Double(BFloat16.round(Float(e[t] * (1 + window))))
            for j in 0..<hd {
                let v = at(t, 2, j)
                out[j] += rounded * v
                weighted[j] += rounded * abs(v)
                ambiguous[j] += (high - low) * abs(v)
            }
        }
        // P V: float sums of n exact products, then the row's 1 / sum (the sum of n float
        // exponentials, each off by its window) applied once.
        let sumError = Double(n + 4) * u + maxError * 2 + 8 * u
        var bound = out
        for j in 0..<hd {
            out[j] /= sum
            bound[j] = (Double(n + 4) * u * weighted[j] + ambiguous[j]) / sum + sumError * abs(out[j])
        }
        let probs = e.map { $0 / sum }
        return Row(out: out, bound: bound, probs: probs,
                   probBound: (0..<n).map { probs[$0] * (windows[$0] + sumError + 2 * u) + u })
    }

    /// Runs `c` on the active path and tile, kept probabilities and workspace form, and checks
    /// both against `references` (per image, head and checked row).
    func check(_ c: Case, _ qkv: [Float], _ references: [[[Row]]], _ label: String) {
        let n = c.tokens, d = c.dim, p = Parallelism(threads: 2)
        var kept = [Float](repeating: 0, count: c.batch * n * d), workspace = kept
        let probs = FloatBuffer(count: c.batch * c.heads * n * n)
        attentionForward(out: &kept, probs: .keep(probs.pointer), qkv: qkv, batch: c.batch, tokens: n, heads: c.heads,
                         headDim: c.headDim, precision: .bf16, parallelism: p)
        let scratch = FloatBuffer(count: attentionScratchCount(tokens: n, headDim: c.headDim, parallelism: p))
        attentionForward(out: &workspace, qkv: qkv, batch: c.batch, tokens: n, heads: c.heads, headDim: c.headDim,
                         scratch: scratch.pointer, precision: .bf16, parallelism: p)
        XCTAssertEqual(kept, workspace, "\(label): kept probabilities vs workspace")
        let kernelProbs = probs.array()
        var worst = 0.0, worstProbability = 0.0, at = ""
        for b in 0..<c.batch {
            for h in 0..<c.heads {
                for (r, i) in c.rows.enumerated() {
                    let row = references[b][h][r]
                    for j in 0..<c.headDim {
                        let err = abs(Double(kept[(b * n + i) * d + h * c.headDim + j]) - row.out[j]) / row.bound[j]
                        if err > worst { (worst, at) = (err, "image \(b) head \(h) query \(i) column \(j)") }
                    }
                    for t in 0..<n {
                        let got = Double(kernelProbs[((b * c.heads + h) * n + i) * n + t])
                        worstProbability = max(worstProbability, abs(got - row.probs[t]) / row.probBound[t])
                    }
                }
            }
        }
        XCTAssertLessThanOrEqual(worst, 1, "\(label): error / bound \(worst) at \(at)")
        XCTAssertLessThanOrEqual(worstProbability, 1, "\(label): float probabilities, error / bound")
    }

    func testBF16AttentionMatchesRoundedReferenceOnEveryPathAndTile() {
        let inputs = Self.cases.map(\.qkv)
        let references = zip(Self.cases, inputs).map { c, qkv in
            (0..<c.batch).map { b in (0..<c.heads).map { h in c.rows.map { Self.reference(c, qkv, b: b, h: h, i: $0) } } }
        }
        func all(_ label: String) {
            for (k, c) in Self.cases.enumerated() {
                check(c, inputs[k], references[k], "\(label) \(c.batch)x\(c.tokens) heads \(c.heads)x\(c.headDim)")
            }
        }
        KernelPaths.each { path in
            guard path == .avx512 else {
                all("\(path.rawValue) (\(KernelDispatch.bf16Kernel))")
                return
            }
            defer { KernelDispatch.limitBF16Tile(.amx) }
            for tile in KernelDispatch.supportedBF16Tiles {
                XCTAssertEqual(KernelDispatch.limitBF16Tile(tile), tile)
                all("avx512 \(tile) (\(KernelDispatch.bf16Kernel))")
            }
        }
    }

    /// The rule is `Precision.bf16Attention`'s: bf16 products at both reduced precisions, and the
    /// f32 form (bit for bit the default) at f32.
    func testReducedPrecisionsUseTheBF16FormAndF32TheFloatOne() {
        let c = Self.cases[3], qkv = c.qkv, p = Parallelism(threads: 2)
        func run(_ precision: Precision?) -> [Float] {
            var out = [Float](repeating: 0, count: c.batch * c.tokens * c.dim)
            let scratch = FloatBuffer(count: attentionScratchCount(tokens: c.tokens, headDim: c.headDim, parallelism: p))
            if let precision {
                attentionForward(out: &out, qkv: qkv, batch: c.batch, tokens: c.tokens, heads: c.heads,
                                 headDim: c.headDim, scratch: scratch.pointer, precision: precision, parallelism: p)
            } else {
                attentionForward(out: &out, qkv: qkv, batch: c.batch, tokens: c.tokens, heads: c.heads,
                                 headDim: c.headDim, scratch: scratch.pointer, parallelism: p)
            }
            return out
        }
        XCTAssertEqual(Precision.allCases.filter(\.bf16Attention), [.bf16, .int8])
        XCTAssertEqual(run(.f32), run(nil))
        XCTAssertEqual(run(.int8), run(.bf16))
        XCTAssertNotEqual(run(.bf16), run(.f32))
    }
}
