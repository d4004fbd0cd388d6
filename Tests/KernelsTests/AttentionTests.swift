import Kernels
import TensorStore
import XCTest

/// Attention's two probability modes compute the same thing, row blocks of a GEMM do not change
/// its result beyond rounding, and `parallelFor` visits every index once. (Attention and linear values are
/// checked against PyTorch through the golden sets, which run them inside the model.)
final class AttentionTests: XCTestCase {
    func testKeptAndScratchProbabilitiesGiveTheSameOutput() {
        let batch = 2, tokens = 7, heads = 3, headDim = 4, dim = heads * headDim
        let qkv = SyntheticInput.values(seed: 21, count: batch * tokens * 3 * dim)
        let p = Parallelism(threads: 2)
        var kept = [Float](repeating: 0, count: batch * tokens * dim), scratched = kept
        var probs = [Float](repeating: 0, count: batch * heads * tokens * tokens)
        var scratch = [Float](repeating: 0, count: attentionScratchCount(batch: batch, heads: heads, tokens: tokens, parallelism: p))
        probs.withUnsafeMutableBufferPointer { pb in
            attentionForward(out: &kept, probs: .keep(pb.baseAddress!), qkv: qkv, batch: batch, tokens: tokens,
                             heads: heads, headDim: headDim, parallelism: p)
        }
        scratch.withUnsafeMutableBufferPointer { sb in
            attentionForward(out: &scratched, probs: .scratch(sb.baseAddress!), qkv: qkv, batch: batch, tokens: tokens,
                             heads: heads, headDim: headDim, parallelism: p)
        }
        XCTAssertEqual(kept, scratched)
        for row in 0..<(batch * heads * tokens) {
            let sum = probs[(row * tokens)..<((row + 1) * tokens)].reduce(0, +)
            XCTAssertEqual(sum, 1, accuracy: 1e-6)
        }
    }

    func testRowBlocksDoNotChangeALinearLayer() {
        let rows = 130, inF = 48, outF = 96
        let x = SyntheticInput.values(seed: 22, count: rows * inF)
        let w = SyntheticInput.values(seed: 23, count: outF * inF)
        let b = SyntheticInput.values(seed: 24, count: outF)
        var one = [Float](repeating: 0, count: rows * outF), four = one
        linearForward(out: &one, inp: x, weight: w, bias: b, rows: rows, inFeatures: inF, outFeatures: outF, parallelism: .serial)
        linearForward(out: &four, inp: x, weight: w, bias: b, rows: rows, inFeatures: inF, outFeatures: outF,
                      parallelism: Parallelism(threads: 4))
        XCTAssertEqual(linearRowBlocks(rows: rows, inFeatures: inF, outFeatures: outF, parallelism: Parallelism(threads: 4)), 4)
        // BLAS may pick another kernel for a smaller block (small-matrix paths), so allow rounding.
        for (a, b) in zip(one, four) { XCTAssertEqual(a, b, accuracy: 1e-5 * max(1, abs(a))) }
    }

    func testParallelForVisitsEveryIndexOnce() {
        for (count, threads) in [(0, 2), (1, 4), (5, 2), (1000, 3)] {
            let hits = UnsafeMutableBufferPointer<Int>.allocate(capacity: Swift.max(count, 1))
            hits.initialize(repeating: 0)
            defer { hits.deallocate() }
            parallelFor(count, Parallelism(threads: threads)) { range in for i in range { hits[i] += 1 } }
            XCTAssertTrue(hits.prefix(count).allSatisfy { $0 == 1 }, "\(count) over \(threads)")
        }
    }
}
