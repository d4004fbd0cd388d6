import DINOv2
import Kernels
import TensorStore
@testable import Training
import XCTest

/// The composed backward passes — a block (GELU MLP and SwiGLU, with and without LayerScale),
/// the whole backbone (registers, masks, resampled position table) — and the losses' gradients,
/// against central finite differences.
final class ModelFiniteDifferenceTests: XCTestCase {
    typealias G = GradientCheck

    /// Random parameters of moderate size (LayerNorm weights around 1).
    func fill(_ block: ParameterBlock, seed: UInt32, scale: Float) {
        let v = G.values(seed, block.count, scale: scale)
        block.base.update(from: v, count: v.count)
        for s in block.layout.slots where s.name.hasSuffix("norm1.weight") || s.name.hasSuffix("norm2.weight") || s.name == "norm.weight" {
            for i in 0..<s.count { block.base[s.offset + i] += 1 }
        }
    }

    /// Checks every tensor of `params` (sampled coordinates) against `analytic` for loss `f`.
    func checkAll(_ label: String, _ params: ParameterBlock, _ analytic: ParameterBlock, samples: Int = 24, step: Float = 2e-2,
                  tolerance: Double = 2e-3,
                  file: StaticString = #filePath, line: UInt = #line, _ f: () -> Double) {
        for s in params.layout.slots {
            let original = params.array(s.name)
            G.check("\(label) d\(s.name)", variable: original, analytic: analytic.array(s.name), step: step,
                    relativeTolerance: tolerance, samples: samples,
                    file: file, line: line) { v in
                (params.base + s.offset).update(from: v, count: v.count)
                let l = f()
                (params.base + s.offset).update(from: original, count: original.count)
                return l
            }
        }
    }

    func testBlockBackward() throws {
        for (ffn, layerScale) in [(Config.FFN.mlp, true), (.swiglu, true), (.mlp, false)] {
            let c = Config(embedDim: 8, depth: 1, numHeads: 2, ffn: ffn,
                           ffnHidden: ffn == .swiglu ? SSLConfig.swigluHidden(embedDim: 8) : 32, positionGrid: 2,
                           layerScale: layerScale)
            let label = "\(ffn)\(layerScale ? "" : " no-ls")"
            let params = ParameterBlock(layout: backboneLayout(c)), grads = ParameterBlock(layout: backboneLayout(c))
            fill(params, seed: 40, scale: 1)
            let acts = try BackboneActivations(config: c, batch: 2, height: 28, width: 28)
            let rows = acts.rows, d = c.embedDim
            let x = G.values(41, rows * d, scale: 2), r = G.values(42, rows * d)
            let w = BackboneTensors(params, config: c).blocks[0], s = acts.blocks[0]
            func f(_ x: [Float]) -> Double {
                s.input.update(from: x, count: x.count)
                blockTrainingForward(w, s, config: c, batch: acts.batch, tokens: acts.tokens, parallelism: .serial)
                return G.dot(r, s.output)
            }
            _ = f(x)
            let scratch = BackboneGradScratch(serving: [acts], parallelism: .serial)
            scratch.dx.update(from: r, count: r.count)
            blockBackward(w, BackboneTensors(grads, config: c).blocks[0], s, scratch, config: c, batch: acts.batch,
                          tokens: acts.tokens, parallelism: .serial)
            let dx = Array(UnsafeBufferPointer(start: scratch.dx, count: rows * d))
            G.check("block(\(label)) dx", variable: x, analytic: dx, samples: 48) { f($0) }
            for slot in params.layout.slots where slot.name.hasPrefix("blocks.0.") {
                let original = params.array(slot.name)
                G.check("block(\(label)) d\(slot.name)", variable: original, analytic: grads.array(slot.name), samples: 24) { v in
                    (params.base + slot.offset).update(from: v, count: v.count)
                    let l = f(x)
                    (params.base + slot.offset).update(from: original, count: original.count)
                    return l
                }
            }
        }
    }

    /// The whole backbone: patch embedding, mask tokens, cls, registers, position table resampled
    /// from a 3×3 grid to 2×3 (offset 0.1, plain) and to 1×1 (antialiased), two blocks, final norm.
    func testBackboneBackward() throws {
        let cases: [(PositionInterpolation, Int, Int)] = [
            (PositionInterpolation(offset: 0.1, antialias: false), 28, 42),
            (PositionInterpolation(offset: 0, antialias: true), 14, 14),
        ]
        for (ip, h, w) in cases {
            let c = Config(embedDim: 8, depth: 2, numHeads: 2, registerTokens: 2, ffnHidden: 16, positionGrid: 3,
                           interpolation: ip)
            let params = ParameterBlock(layout: backboneLayout(c)), grads = ParameterBlock(layout: backboneLayout(c))
            fill(params, seed: 43, scale: 0.8)
            let acts = try BackboneActivations(config: c, batch: 2, height: h, width: w)
            let pixels = G.values(44, 2 * 3 * h * w, scale: 2)
            let masks = (0..<(2 * acts.patches)).map { $0 % 4 == 1 }
            let r = G.values(45, acts.rows * c.embedDim)
            func f() -> Double {
                backboneForward(BackboneTensors(params, config: c), acts, pixels: pixels, masks: masks, parallelism: .serial)
                return G.dot(r, acts.normOut)
            }
            _ = f()
            let scratch = BackboneGradScratch(serving: [acts], parallelism: .serial)
            backboneBackward(BackboneTensors(params, config: c), BackboneTensors(grads, config: c), acts, scratch,
                             dnormOut: r, parallelism: .serial)
            // Two blocks of Float rounding in the forward put the noise of the differences near
            // 1e-3 of the smallest gradients (the patch bias); wrong gradients miss by O(1).
            checkAll("backbone \(h)x\(w)", params, grads, tolerance: 5e-3, f)
        }
    }

    /// Stochastic depth with both of the official schemes — a random subset of images per branch
    /// scaled by B/S (rate > 0.1), per-image keep/drop scaled by 1/(1 − r) (rate ≤ 0.1) — with the
    /// subsets drawn once and held fixed, so the function differentiated is deterministic.
    func testBackboneBackwardWithStochasticDepth() throws {
        for rate in [0.5, 0.1] {
            let c = Config(embedDim: 8, depth: 2, numHeads: 2, ffnHidden: 16, positionGrid: 2)
            let params = ParameterBlock(layout: backboneLayout(c)), grads = ParameterBlock(layout: backboneLayout(c))
            // Branches added with factor B/S = 2 curve the function more: smaller weights and step.
            fill(params, seed: 53, scale: 0.5)
            let acts = try BackboneActivations(config: c, batch: 4, height: 28, width: 28, stochasticDepth: true)
            let pixels = G.values(54, 4 * 3 * 28 * 28, scale: 2)
            let r = G.values(55, acts.rows * c.embedDim)
            var sd = StochasticDepth(rate: rate, seed: 3)
            backboneForward(BackboneTensors(params, config: c), acts, pixels: pixels, masks: nil, stochasticDepth: &sd,
                            parallelism: .serial)
            let subsets = acts.blocks.flatMap { [$0.attentionSubset, $0.ffnSubset] }
            XCTAssertTrue(subsets.allSatisfy { !$0.isIdentity })
            if rate > 0.1 {
                XCTAssertTrue(subsets.allSatisfy { $0.count == 2 && $0.scales[0] == 2 })
            } else {
                XCTAssertTrue(subsets.contains { s in (0..<s.count).contains { s.scales[$0] == 0 } }, "some image dropped")
            }
            func f() -> Double {
                backboneForwardWithSubsets(BackboneTensors(params, config: c), acts, pixels: pixels, masks: nil,
                                           parallelism: .serial)
                return G.dot(r, acts.normOut)
            }
            _ = f()
            let scratch = BackboneGradScratch(serving: [acts], parallelism: .serial)
            backboneBackward(BackboneTensors(params, config: c), BackboneTensors(grads, config: c), acts, scratch,
                             dnormOut: r, parallelism: .serial)
            checkAll("drop path \(rate)", params, grads, step: 5e-3, tolerance: 5e-3, f)
        }
    }

    func testDINOLossGradients() {
        let b = 3, l = 2, k = 7
        let teacherLogits = G.values(46, 2 * b * k, scale: 4)
        var teacher = teacherLogits
        for i in 0..<(2 * b) { teacher.withUnsafeMutableBufferPointer { softmaxRowInPlace($0.baseAddress! + i * k, cols: k) } }
        let local = G.values(47, l * b * k, scale: 2), global = G.values(48, 2 * b * k, scale: 2)
        var dlocal = [Float](repeating: 0, count: local.count), dglobal = [Float](repeating: 0, count: global.count)
        _ = DINOLoss.localTerm(studentLocal: local, teacher: teacher, batch: b, localCrops: l, classes: k,
                               studentTemperature: 0.1, weight: 1, dlocal: &dlocal, parallelism: .serial)
        _ = DINOLoss.globalTerm(studentGlobal: global, teacher: teacher, batch: b, localCrops: l, classes: k,
                                studentTemperature: 0.1, weight: 1, dglobal: &dglobal, parallelism: .serial)
        G.check("dino local", variable: local, analytic: dlocal, step: 1e-3) { s in
            DINOLoss.localTerm(studentLocal: s, teacher: teacher, batch: b, localCrops: l, classes: k,
                               studentTemperature: 0.1, weight: 1, dlocal: nil, parallelism: .serial)
        }
        G.check("dino global", variable: global, analytic: dglobal, step: 1e-3) { s in
            DINOLoss.globalTerm(studentGlobal: s, teacher: teacher, batch: b, localCrops: l, classes: k,
                                studentTemperature: 0.1, weight: 1, dglobal: nil, parallelism: .serial)
        }
        XCTAssertEqual(DINOLoss.termCount(localCrops: 8), 18)
        XCTAssertEqual(DINOLoss.termCount(localCrops: 0), 3)
    }

    func testiBOTLossGradient() {
        let crops = 4, patches = 3, k = 5
        let masks: [Bool] = [true, false, true, false, false, false, true, true, true, false, true, false]
        var weights = [Float](repeating: 0, count: masks.count)
        let n = iBOTPatchLoss.maskWeights(masks: masks, crops: crops, patches: patches, into: &weights)
        XCTAssertEqual(n, 6)
        XCTAssertEqual(Array(weights.prefix(n)), [0.5, 0.5, 1 / 3, 1 / 3, 1 / 3, 1])
        let teacherLogits = G.values(49, n * k, scale: 3)
        var teacher = teacherLogits
        for i in 0..<n { teacher.withUnsafeMutableBufferPointer { softmaxRowInPlace($0.baseAddress! + i * k, cols: k) } }
        let student = G.values(50, n * k, scale: 2)
        var ds = [Float](repeating: 0, count: student.count)
        _ = iBOTPatchLoss.term(student: student, teacher: teacher, weights: weights, maskedRows: n, crops: crops, classes: k,
                               studentTemperature: 0.1, weight: 0.5, dstudent: &ds, parallelism: .serial)
        G.check("ibot", variable: student, analytic: ds.map { $0 * 2 }, step: 1e-3) { s in
            iBOTPatchLoss.term(student: s, teacher: teacher, weights: weights, maskedRows: n, crops: crops, classes: k,
                               studentTemperature: 0.1, weight: 1, dstudent: nil, parallelism: .serial)
        }
    }

    func testKoLeoGradient() {
        let b = 5, d = 4
        let x = G.values(51, b * d, scale: 3)
        var dx = [Float](repeating: 0, count: x.count)
        var scratch = [Float](repeating: 0, count: KoLeoLoss.scratchCount(rows: b, dim: d))
        _ = KoLeoLoss.term(x: x, rows: b, dim: d, weight: 1, dx: &dx, scratch: &scratch)
        G.check("koleo", variable: x, analytic: dx, step: 4e-3) { x in
            KoLeoLoss.term(x: x, rows: b, dim: d, weight: 1, dx: nil, scratch: &scratch)
        }
    }

    /// Sinkhorn-Knopp's output is an assignment: every sample's row sums to one.
    func testSinkhornRowsSumToOne() throws {
        let rows = 5, k = 9
        let t = G.values(52, rows * k, scale: 2)
        var q = [Float](repeating: 0, count: rows * k)
        try SinkhornKnopp.targets(out: &q, teacher: t, rows: rows, classes: k, temperature: 0.1)
        for r in 0..<rows { XCTAssertEqual(q[(r * k)..<((r + 1) * k)].reduce(0, +), 1, accuracy: 1e-5) }
        XCTAssertThrowsError(try SinkhornKnopp.targets(out: &q, teacher: t.map { $0 * 100 }, rows: rows, classes: k,
                                                       temperature: 0.01))
    }
}
