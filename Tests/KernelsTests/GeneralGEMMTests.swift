import Kernels
import TensorStore
import XCTest

/// `gemm` (CKernels' `dk_sgemm`, the training path's GEMM) against a Float64 triple loop: every
/// transposition of A and B, strided operands, alpha, bias and accumulation, on sizes that cross
/// the k block (384), the row block (144) and the packed-B column block, on every kernel path;
/// and the same bits whatever the thread count.
final class GeneralGEMMTests: XCTestCase {
    struct Problem {
        let transA: Bool, transB: Bool
        let m: Int, n: Int, k: Int
        let lda: Int, ldb: Int, ldc: Int
        let a: [Float], b: [Float], c0: [Float], bias: [Float]

        init(transA: Bool, transB: Bool, _ m: Int, _ n: Int, _ k: Int, pad: Int = 0, seed: UInt32) {
            self.transA = transA
            self.transB = transB
            self.m = m
            self.n = n
            self.k = k
            lda = (transA ? m : k) + pad
            ldb = (transB ? k : n) + pad
            ldc = n + pad
            a = SyntheticInput.values(seed: seed, count: (transA ? k : m) * lda)
            b = SyntheticInput.values(seed: seed + 1, count: (transB ? n : k) * ldb)
            c0 = SyntheticInput.values(seed: seed + 2, count: m * ldc)
            bias = SyntheticInput.values(seed: seed + 3, count: n)
        }

        func opA(_ i: Int, _ p: Int) -> Double { Double(transA ? a[p * lda + i] : a[i * lda + p]) }
        func opB(_ p: Int, _ j: Int) -> Double { Double(transB ? b[j * ldb + p] : b[p * ldb + j]) }

        /// The exact product op(A)·op(B) in Float64, m × n.
        func product() -> [Double] {
            var s = [Double](repeating: 0, count: m * n)
            for i in 0..<m {
                for p in 0..<k {
                    let x = opA(i, p)
                    for j in 0..<n { s[i * n + j] += x * opB(p, j) }
                }
            }
            return s
        }

        /// The product combined as `gemm` promises; padding columns keep c0.
        func reference(_ s: [Double], alpha: Float, accumulate: Bool, bias useBias: Bool) -> [Float] {
            var out = c0
            for i in 0..<m {
                for j in 0..<n {
                    var y = Double(alpha) * s[i * n + j]
                    if accumulate { y += Double(c0[i * ldc + j]) } else if useBias { y += Double(bias[j]) }
                    out[i * ldc + j] = Float(y)
                }
            }
            return out
        }

        func run(alpha: Float, accumulate: Bool, bias useBias: Bool, threads: Int) -> [Float] {
            var out = c0
            bias.withUnsafeBufferPointer { bp in
                gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                     accumulate: accumulate, c: &out, ldc: ldc, bias: useBias ? bp.baseAddress : nil,
                     parallelism: Parallelism(threads: threads))
            }
            return out
        }
    }

    static let sizes: [(Int, Int, Int)] = [(1, 1, 1), (5, 7, 3), (13, 33, 100), (150, 70, 61), (61, 97, 777), (145, 65, 385), (20, 70, 2048)]

    func testEveryTranspositionMatchesTheExactProduct() {
        for (i, (m, n, k)) in Self.sizes.enumerated() {
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                let p = Problem(transA: ta, transB: tb, m, n, k, pad: i % 2 == 0 ? 0 : 3, seed: UInt32(40 + 4 * i))
                let s = p.product()
                let plain = p.reference(s, alpha: 1, accumulate: false, bias: false)
                let biased = p.reference(s, alpha: 0.125, accumulate: false, bias: true)
                let summed = p.reference(s, alpha: 0.5, accumulate: true, bias: false)
                KernelPaths.each { path in
                    let what = "\(path.rawValue) \(ta ? "T" : "N")\(tb ? "T" : "N") \(m)x\(n)x\(k)"
                    assertClose(p.run(alpha: 1, accumulate: false, bias: false, threads: 2), plain, relative: 2e-6, what)
                    assertClose(p.run(alpha: 0.125, accumulate: false, bias: true, threads: 2), biased, relative: 2e-6,
                                what + " bias")
                    assertClose(p.run(alpha: 0.5, accumulate: true, bias: false, threads: 2), summed, relative: 2e-6,
                                what + " accumulate")
                }
            }
        }
    }

    func testWideProductsCrossTheColumnBlock() {
        // 1 M floats of packed B per block: with k = 256 that is 4096 columns, so 4200 makes two.
        let p = Problem(transA: false, transB: true, 9, 4200, 256, seed: 90)
        assertClose(p.run(alpha: 1, accumulate: false, bias: true, threads: 2),
                    p.reference(p.product(), alpha: 1, accumulate: false, bias: true), relative: 2e-6, "9x4200x256")
    }

    func testThreadCountDoesNotChangeTheBits() {
        KernelPaths.each { path in
            for (ta, tb) in [(false, true), (false, false), (true, false)] {
                let p = Problem(transA: ta, transB: tb, 301, 200, 450, seed: 70)
                let one = p.run(alpha: 1, accumulate: true, bias: false, threads: 1)
                XCTAssertEqual(one, p.run(alpha: 1, accumulate: true, bias: false, threads: 2), path.rawValue)
                XCTAssertEqual(one, p.run(alpha: 1, accumulate: true, bias: false, threads: 5), path.rawValue)
            }
        }
    }
}
