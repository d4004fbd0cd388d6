import DINOv2
import Kernels
import TensorStore
import XCTest
@testable import Training

/// DINOv3's RoPE is linear in q and k, so its backward is its transpose: for any x and dy,
/// ⟨dy, R x⟩ = ⟨Rᵀ dy, x⟩ exactly (up to rounding). Checked on a non-square grid, several heads,
/// a prefix of unrotated tokens and the values, which neither direction may touch. (The full
/// step against autograd, FinetuneFullStepTests, checks it in place.)
final class RotaryBackwardTests: XCTestCase {
    func testTransposeIsTheAdjointOfTheRotation() {
        let heads = 2, headDim = 8, d = heads * headDim, batch = 2, prefix = 5, rows = 4, cols = 6
        let tokens = prefix + rows * cols
        let periods: [Float] = [1, 10]  // D_head / 4
        let rope = RotaryPositions(periods: periods, patchRows: rows, patchCols: cols)
        var generator = SyntheticInput(seed: 11)
        func random() -> [Float] { (0..<(batch * tokens * 3 * d)).map { _ in Float(generator.nextState() >> 8) / Float(1 << 23) - 1 } }
        let x = random(), dy = random()
        for threads in [1, 2] {
            var rx = x, rtdy = dy
            rope.apply(qkv: &rx, batch: batch, tokens: tokens, prefix: prefix, heads: heads, parallelism: Parallelism(threads: threads))
            rope.applyTranspose(gradient: &rtdy, batch: batch, tokens: tokens, prefix: prefix, heads: heads,
                                parallelism: Parallelism(threads: threads))
            let lhs = zip(dy, rx).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let rhs = zip(rtdy, x).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            XCTAssertEqual(lhs, rhs, accuracy: 1e-5 * max(1, abs(lhs)))
            // A rotation: Rᵀ R x = x.
            var back = rx
            rope.applyTranspose(gradient: &back, batch: batch, tokens: tokens, prefix: prefix, heads: heads, parallelism: .serial)
            XCTAssertLessThan(zip(back, x).map { abs($0 - $1) }.max() ?? 0, 1e-5)
            // Prefix rows and the values are untouched; every patch row's q and k are rotated.
            for b in 0..<batch {
                for t in 0..<tokens {
                    let row = (b * tokens + t) * 3 * d
                    let qk = (row..<(row + 2 * d)), v = ((row + 2 * d)..<(row + 3 * d))
                    XCTAssertEqual(Array(rx[v]), Array(x[v]))
                    XCTAssertEqual(Array(rtdy[v]), Array(dy[v]))
                    if t < prefix {
                        XCTAssertEqual(Array(rx[qk]), Array(x[qk]))
                        XCTAssertEqual(Array(rtdy[qk]), Array(dy[qk]))
                    }
                }
            }
        }
        XCTAssertNotEqual(rope.sin.array(), [Float](repeating: 0, count: rope.sin.count))
    }
}
