import Kernels
import TensorStore
import XCTest

/// DinoKit's packed micro-kernel GEMM (`linearForward` with `PackedLinearWeights`) against OpenBLAS's
/// `cblas_sgemm` on sizes that are not multiples of the tiles (6 or 12 × 32) and that cross the
/// k-block (384) and row-block (144) boundaries, on every kernel path; its fused epilogues against
/// the separate kernels they replace; one thread (row blocks, A packed per block) against the
/// split by columns (A packed once, shared), bit for bit.
final class PackedGEMMTests: XCTestCase {
    struct Problem {
        let rows: Int, inFeatures: Int, outFeatures: Int
        let x: [Float], w: [Float], bias: [Float]

        init(_ rows: Int, _ inFeatures: Int, _ outFeatures: Int, seed: UInt32) {
            self.rows = rows
            self.inFeatures = inFeatures
            self.outFeatures = outFeatures
            x = SyntheticInput.values(seed: seed, count: rows * inFeatures)
            w = SyntheticInput.values(seed: seed + 1, count: outFeatures * inFeatures)
            bias = SyntheticInput.values(seed: seed + 2, count: outFeatures)
        }

        /// bias + x · wᵀ through OpenBLAS, as `torch.addmm` computes it.
        func blas() -> [Float] {
            var out = [Float](repeating: 0, count: rows * outFeatures)
            for r in 0..<rows { for o in 0..<outFeatures { out[r * outFeatures + o] = bias[o] } }
            sgemm(transB: true, m: rows, n: outFeatures, k: inFeatures, a: x, lda: inFeatures, b: w, ldb: inFeatures,
                  beta: 1, c: &out, ldc: outFeatures)
            return out
        }

        func packed() -> PackedLinearWeights {
            w.withUnsafeBufferPointer { PackedLinearWeights(weight: $0.baseAddress!, outFeatures: outFeatures, inFeatures: inFeatures) }
        }

        func run(_ epilogue: (UnsafeMutablePointer<Float>) -> LinearEpilogue = { _ in .store },
                 residual: inout [Float], threads: Int = 2) -> [Float] {
            var out = [Float](repeating: 0, count: rows * outFeatures)
            let weights = packed()
            residual.withUnsafeMutableBufferPointer { r in
                out.withUnsafeMutableBufferPointer { o in
                    linearForward(out: o.baseAddress!, inp: x, weight: weights, bias: bias, rows: rows,
                                  epilogue: epilogue(r.baseAddress!), parallelism: Parallelism(threads: threads))
                }
            }
            return out
        }

        func run(threads: Int = 2) -> [Float] {
            var none: [Float] = [0]
            return run(residual: &none, threads: threads)
        }
    }

    static let sizes: [(Int, Int, Int)] = [
        (1, 1, 1), (5, 3, 7), (7, 5, 33), (13, 100, 70), (61, 300, 259), (150, 600, 97), (257, 384, 1152),
    ]

    func testPackedGEMMMatchesBLASOnOddSizes() {
        KernelPaths.each { path in
            for (i, (m, k, n)) in Self.sizes.enumerated() {
                let p = Problem(m, k, n, seed: UInt32(10 * i + 1))
                assertClose(p.run(), p.blas(), relative: 1e-5, "\(path.rawValue) \(m)x\(k)x\(n)")
            }
        }
    }

    func testRowSplitAcrossThreadsIsBitwiseDeterministic() {
        KernelPaths.each { path in
            let p = Problem(301, 70, 45, seed: 77)
            let one = p.run(threads: 1)
            XCTAssertEqual(one, p.run(threads: 3), path.rawValue)
            XCTAssertEqual(one, p.run(threads: 8), path.rawValue)
        }
    }

    /// The column split hands out panel groups and row blocks (several of each here, k over two
    /// or four k blocks) and runs the LayerNorm after: every epilogue must give the one-thread
    /// result exactly, whatever the thread count.
    func testColumnSplitEqualsOneThreadForEveryEpilogue() {
        KernelPaths.each { path in
            for (i, (m, k, n)) in [(257, 800, 200), (514, 384, 600), (61, 700, 259), (145, 385, 70)].enumerated() {
                let p = Problem(m, k, n, seed: UInt32(200 + 10 * i))
                let x0 = SyntheticInput.values(seed: UInt32(205 + 10 * i), count: m * n)
                let gamma = FloatBuffer(SyntheticInput.values(seed: 206, count: n))
                let lnWeight = FloatBuffer(SyntheticInput.values(seed: 207, count: n))
                let lnBias = FloatBuffer(SyntheticInput.values(seed: 208, count: n))
                let norm = FloatBuffer(count: m * n)
                let target = LayerNormTarget(out: norm.pointer, weight: lnWeight.pointer, bias: lnBias.pointer, eps: 1e-6)
                func results(_ threads: Int) -> [[Float]] {
                    var none: [Float] = [0]
                    let stored = p.run(residual: &none, threads: threads)
                    let gelu = p.run({ _ in .gelu }, residual: &none, threads: threads)
                    var x = x0
                    _ = p.run({ r in .residual(r, gamma: gamma.pointer, norm: target) }, residual: &x, threads: threads)
                    return [stored, gelu, x, norm.array()]
                }
                let one = results(1)
                for threads in [2, 3] {
                    let many = results(threads)
                    for (name, (a, b)) in zip(["store", "gelu", "residual", "norm"], zip(one, many)) {
                        XCTAssertEqual(a, b, "\(path.rawValue) \(m)x\(k)x\(n) \(name), \(threads) threads")
                    }
                }
            }
        }
    }

    func testGELUEpilogueEqualsGELUAfterTheGEMM() {
        KernelPaths.each { path in
            let p = Problem(23, 300, 70, seed: 31)
            var none: [Float] = [0]
            let fused = p.run({ _ in .gelu }, residual: &none)
            var separate = p.run()
            geluForward(out: &separate, inp: separate, count: separate.count)
            XCTAssertEqual(fused, separate, path.rawValue)
        }
    }

    func testResidualEpilogueEqualsTheResidualKernelThenLayerNorm() {
        KernelPaths.each { path in
            let p = Problem(29, 300, 70, seed: 41)
            let x0 = SyntheticInput.values(seed: 45, count: p.rows * p.outFeatures)
            let gamma = FloatBuffer(SyntheticInput.values(seed: 46, count: p.outFeatures))
            let lnWeight = FloatBuffer(SyntheticInput.values(seed: 47, count: p.outFeatures))
            let lnBias = FloatBuffer(SyntheticInput.values(seed: 48, count: p.outFeatures))

            // Fused: x += gamma ⊙ (x·Wᵀ + b), then LayerNorm of the updated rows.
            var fusedX = x0
            let fusedNorm = FloatBuffer(count: x0.count)
            let target = LayerNormTarget(out: fusedNorm.pointer, weight: lnWeight.pointer, bias: lnBias.pointer, eps: 1e-6)
            _ = p.run({ x in .residual(x, gamma: gamma.pointer, norm: target) }, residual: &fusedX)

            // Separate kernels.
            var x = x0
            let branch = p.run()
            residualLayerScaleForward(x: &x, branch: branch, gamma: gamma.pointer, rows: p.rows, cols: p.outFeatures)
            var norm = [Float](repeating: 0, count: x.count)
            layerNormForward(out: &norm, mean: nil, rstd: nil, inp: x, weight: lnWeight.pointer, bias: lnBias.pointer,
                             rows: p.rows, cols: p.outFeatures, eps: 1e-6)
            XCTAssertEqual(fusedX, x, path.rawValue)
            XCTAssertEqual(fusedNorm.array(), norm, path.rawValue)

            // Without LayerScale: x += y.
            var plainX = x0
            _ = p.run({ x in .residual(x, gamma: nil, norm: nil) }, residual: &plainX)
            var expected = x0
            residualLayerScaleForward(x: &expected, branch: branch, gamma: nil, rows: p.rows, cols: p.outFeatures)
            XCTAssertEqual(plainX, expected, path.rawValue)
        }
    }
}
