import Kernels
import TensorStore
import XCTest

/// The fused attention (K, V packed per head; 64 queries at a time through scores, softmax and
/// P V — by rows, or transposed on the AVX-512 path) against the textbook formula evaluated in
/// Double, on every kernel path, for head widths that are and are not multiples of the 32-column
/// panel and token counts around the 64-query block and the 12-row tile; and its three entry points
/// (kept probabilities, scratch, workspace) against each other.
final class FusedAttentionTests: XCTestCase {
    struct Case {
        let batch: Int, tokens: Int, heads: Int, headDim: Int
        var dim: Int { heads * headDim }
        var qkv: [Float] {
            // Scaled so that the scores spread over a few units, as in a trained model.
            SyntheticInput.values(seed: UInt32(tokens * 131 + headDim), count: batch * tokens * 3 * dim).map { $0 * 0.5 }
        }
    }

    static let cases = [
        Case(batch: 2, tokens: 37, heads: 3, headDim: 64), Case(batch: 1, tokens: 101, heads: 2, headDim: 64),
        Case(batch: 2, tokens: 7, heads: 3, headDim: 24), Case(batch: 1, tokens: 49, heads: 1, headDim: 40),
        Case(batch: 3, tokens: 1, heads: 2, headDim: 8), Case(batch: 1, tokens: 65, heads: 2, headDim: 64),
    ]

    /// softmax(Q Kᵀ / √d) V per head in Double; also the probabilities.
    static func reference(_ c: Case, _ qkv: [Float]) -> (out: [Float], probs: [Float]) {
        let n = c.tokens, d = c.dim, hd = c.headDim
        var out = [Float](repeating: 0, count: c.batch * n * d)
        var probs = [Float](repeating: 0, count: c.batch * c.heads * n * n)
        let scale = 1 / Double(hd).squareRoot()
        for b in 0..<c.batch {
            for h in 0..<c.heads {
                func at(_ t: Int, _ part: Int, _ j: Int) -> Double { Double(qkv[(b * n + t) * 3 * d + part * d + h * hd + j]) }
                for i in 0..<n {
                    var s = (0..<n).map { t in (0..<hd).reduce(0.0) { $0 + at(i, 0, $1) * at(t, 1, $1) } * scale }
                    let m = s.max() ?? 0
                    s = s.map { Foundation.exp($0 - m) }
                    let sum = s.reduce(0, +)
                    for t in 0..<n { probs[((b * c.heads + h) * n + i) * n + t] = Float(s[t] / sum) }
                    for j in 0..<hd {
                        out[(b * n + i) * d + h * hd + j] = Float((0..<n).reduce(0.0) { $0 + s[$1] / sum * at($1, 2, j) })
                    }
                }
            }
        }
        return (out, probs)
    }

    func testFusedAttentionMatchesDoubleReference() {
        let references = Self.cases.map { Self.reference($0, $0.qkv).out }
        KernelPaths.each { path in
            for (c, expected) in zip(Self.cases, references) {
                let qkv = c.qkv
                for threads in [1, 2, 4] {
                    let p = Parallelism(threads: threads)
                    var out = [Float](repeating: 0, count: expected.count)
                    let scratch = FloatBuffer(count: attentionScratchCount(tokens: c.tokens, headDim: c.headDim, parallelism: p))
                    attentionForward(out: &out, qkv: qkv, batch: c.batch, tokens: c.tokens, heads: c.heads,
                                     headDim: c.headDim, scratch: scratch.pointer, parallelism: p)
                    assertClose(out, expected, relative: 2e-6,
                                "\(path.rawValue) \(c.batch)x\(c.tokens) heads \(c.heads)x\(c.headDim), \(threads) threads")
                }
            }
        }
    }

    func testKeptScratchAndWorkspaceFormsAgree() {
        let references = Self.cases.map { Self.reference($0, $0.qkv).probs }
        KernelPaths.each { path in
            for (c, expectedProbs) in zip(Self.cases, references) {
                let qkv = c.qkv, p = Parallelism(threads: 2)
                let count = c.batch * c.tokens * c.dim
                var kept = [Float](repeating: 0, count: count), scratched = kept, workspace = kept
                let probs = FloatBuffer(count: c.batch * c.heads * c.tokens * c.tokens)
                attentionForward(out: &kept, probs: .keep(probs.pointer), qkv: qkv, batch: c.batch, tokens: c.tokens,
                                 heads: c.heads, headDim: c.headDim, parallelism: p)
                let s1 = FloatBuffer(count: attentionScratchCount(batch: c.batch, heads: c.heads, tokens: c.tokens, parallelism: p))
                attentionForward(out: &scratched, probs: .scratch(s1.pointer), qkv: qkv, batch: c.batch, tokens: c.tokens,
                                 heads: c.heads, headDim: c.headDim, parallelism: p)
                let s2 = FloatBuffer(count: attentionScratchCount(tokens: c.tokens, headDim: c.headDim, parallelism: p))
                attentionForward(out: &workspace, qkv: qkv, batch: c.batch, tokens: c.tokens, heads: c.heads,
                                 headDim: c.headDim, scratch: s2.pointer, parallelism: p)
                let what = "\(path.rawValue) \(c.batch)x\(c.tokens) heads \(c.heads)x\(c.headDim)"
                XCTAssertEqual(kept, scratched, what)
                XCTAssertEqual(kept, workspace, what)
                assertClose(probs.array(), expectedProbs, relative: 2e-6, what + " probabilities")
            }
        }
    }
}
