import DINOv2
import Kernels
import TensorStore
@testable import Training
import XCTest

/// Every layer's backward against central finite differences of its training forward, on small
/// seeded inputs (see GradientCheck).
final class FiniteDifferenceTests: XCTestCase {
    typealias G = GradientCheck

    func testLinear() {
        let rows = 5, nin = 7, nout = 6
        let x = G.values(1, rows * nin), w = G.values(2, nout * nin), b = G.values(3, nout), r = G.values(4, rows * nout)
        func f(_ x: [Float], _ w: [Float], _ b: [Float]) -> Double {
            var y = [Float](repeating: 0, count: rows * nout)
            linearForward(out: &y, inp: x, weight: w, bias: b, rows: rows, inFeatures: nin, outFeatures: nout,
                          parallelism: .serial)
            return G.dot(r, y)
        }
        var dx = [Float](repeating: 9, count: rows * nin), dw = [Float](repeating: 0, count: nout * nin)
        var db = [Float](repeating: 0, count: nout)
        linearBackward(dinp: &dx, dweight: &dw, dbias: &db, dout: r, inp: x, weight: w, rows: rows, inFeatures: nin,
                       outFeatures: nout, parallelism: .serial)
        G.check("linear dx", variable: x, analytic: dx) { f($0, w, b) }
        G.check("linear dW", variable: w, analytic: dw) { f(x, $0, b) }
        G.check("linear db", variable: b, analytic: db) { f(x, w, $0) }
        // Accumulation: parameter gradients and (when asked) the input gradient add up.
        var dx2 = dx
        linearBackward(dinp: &dx2, dweight: &dw, dbias: &db, dout: r, inp: x, weight: w, rows: rows, inFeatures: nin,
                       outFeatures: nout, accumulateInput: true, parallelism: .serial)
        G.check("linear dx accumulated", variable: x, analytic: dx2.map { $0 / 2 }) { f($0, w, b) }
        G.check("linear dW accumulated", variable: w, analytic: dw.map { $0 / 2 }) { f(x, $0, b) }
    }

    func testLayerNorm() {
        let rows = 4, cols = 12
        let x = G.values(5, rows * cols, scale: 3), w = G.values(6, cols).map { 1 + $0 / 2 }, b = G.values(7, cols)
        let r = G.values(8, rows * cols)
        func f(_ x: [Float], _ w: [Float], _ b: [Float]) -> Double {
            var y = [Float](repeating: 0, count: rows * cols)
            layerNormForward(out: &y, mean: nil, rstd: nil, inp: x, weight: w, bias: b, rows: rows, cols: cols)
            return G.dot(r, y)
        }
        var y = [Float](repeating: 0, count: rows * cols), mean = [Float](repeating: 0, count: rows)
        var rstd = [Float](repeating: 0, count: rows)
        layerNormForward(out: &y, mean: &mean, rstd: &rstd, inp: x, weight: w, bias: b, rows: rows, cols: cols)
        var dx = [Float](repeating: 0, count: rows * cols), dw = [Float](repeating: 0, count: cols)
        var db = [Float](repeating: 0, count: cols)
        layerNormBackward(dinp: &dx, dweight: &dw, dbias: &db, dout: r, inp: x, mean: mean, rstd: rstd, weight: w,
                          rows: rows, cols: cols, parallelism: .serial)
        G.check("layernorm dx", variable: x, analytic: dx) { f($0, w, b) }
        G.check("layernorm dw", variable: w, analytic: dw) { f(x, $0, b) }
        G.check("layernorm db", variable: b, analytic: db) { f(x, w, $0) }
    }

    func testGELU() {
        let n = 80
        let x = G.values(9, n, scale: 6), r = G.values(10, n)
        var dx = [Float](repeating: 0, count: n)
        geluBackward(dinp: &dx, dout: r, inp: x, count: n, parallelism: .serial)
        G.check("gelu dx", variable: x, analytic: dx) { x in
            var y = [Float](repeating: 0, count: n)
            geluForward(out: &y, inp: x, count: n)
            return G.dot(r, y)
        }
    }

    func testSwiGLU() {
        let rows = 3, hidden = 5
        let u = G.values(11, rows * 2 * hidden, scale: 5), r = G.values(12, rows * hidden)
        var du = [Float](repeating: 0, count: rows * 2 * hidden)
        swigluBackward(dinp: &du, dout: r, inp: u, rows: rows, hidden: hidden, parallelism: .serial)
        G.check("swiglu du", variable: u, analytic: du) { u in
            var y = [Float](repeating: 0, count: rows * hidden)
            swigluForward(out: &y, inp: u, rows: rows, hidden: hidden)
            return G.dot(r, y)
        }
    }

    func testAttention() {
        let batch = 2, tokens = 5, heads = 2, headDim = 3, dim = heads * headDim
        let qkv = G.values(13, batch * tokens * 3 * dim, scale: 3), r = G.values(14, batch * tokens * dim)
        let probsCount = batch * heads * tokens * tokens
        func forward(_ qkv: [Float], _ probs: inout [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: batch * tokens * dim)
            probs.withUnsafeMutableBufferPointer { p in
                attentionForward(out: &out, probs: .keep(p.baseAddress!), qkv: qkv, batch: batch, tokens: tokens,
                                 heads: heads, headDim: headDim, parallelism: .serial)
            }
            return out
        }
        var probs = [Float](repeating: 0, count: probsCount)
        _ = forward(qkv, &probs)
        var dqkv = [Float](repeating: 0, count: qkv.count)
        var scratch = [Float](repeating: 0, count: attentionBackwardScratchCount(batch: batch, heads: heads, tokens: tokens,
                                                                                  parallelism: .serial))
        attentionBackward(dqkv: &dqkv, dout: r, qkv: qkv, probs: probs, scratch: &scratch, batch: batch, tokens: tokens,
                          heads: heads, headDim: headDim, parallelism: .serial)
        G.check("attention dqkv", variable: qkv, analytic: dqkv, samples: 200) { qkv in
            var p = [Float](repeating: 0, count: probsCount)
            return G.dot(r, forward(qkv, &p))
        }
    }

    func testLayerScaleResidual() {
        let rows = 4, cols = 6
        let x = G.values(15, rows * cols), branch = G.values(16, rows * cols), gamma = G.values(17, cols)
        let r = G.values(18, rows * cols)
        func f(_ branch: [Float], _ gamma: [Float]?) -> Double {
            var y = x
            if let gamma {
                residualLayerScaleForward(x: &y, branch: branch, gamma: gamma, rows: rows, cols: cols)
            } else {
                residualLayerScaleForward(x: &y, branch: branch, gamma: nil, rows: rows, cols: cols)
            }
            return G.dot(r, y)
        }
        var dbranch = [Float](repeating: 0, count: rows * cols), dgamma = [Float](repeating: 0, count: cols)
        residualLayerScaleBackward(dbranch: &dbranch, dgamma: &dgamma, dx: r, branch: branch, gamma: gamma, rows: rows,
                                   cols: cols, parallelism: .serial)
        G.check("layerscale dbranch", variable: branch, analytic: dbranch) { f($0, gamma) }
        G.check("layerscale dgamma", variable: gamma, analytic: dgamma) { f(branch, $0) }
        residualLayerScaleBackward(dbranch: &dbranch, dgamma: nil, dx: r, branch: branch, gamma: nil, rows: rows,
                                   cols: cols, parallelism: .serial)
        G.check("residual dbranch", variable: branch, analytic: dbranch) { f($0, nil) }
    }

    func testPatchEmbed() {
        let batch = 2, channels = 3, p = 14, h = 28, w = 42, dim = 4
        let pixels = G.values(19, batch * channels * h * w, scale: 2)
        let unfold = channels * p * p, rows = batch * (h / p) * (w / p)
        let weight = G.values(20, dim * unfold, scale: 0.2), bias = G.values(21, dim), r = G.values(22, rows * dim)
        func f(_ weight: [Float], _ bias: [Float]) -> Double {
            var out = [Float](repeating: 0, count: rows * dim), patches = [Float](repeating: 0, count: rows * unfold)
            patchEmbedForward(out: &out, patches: &patches, pixels: pixels, weight: weight, bias: bias, batch: batch,
                              channels: channels, height: h, width: w, patch: p, dim: dim, parallelism: .serial)
            return G.dot(r, out)
        }
        var out = [Float](repeating: 0, count: rows * dim), patches = [Float](repeating: 0, count: rows * unfold)
        patchEmbedForward(out: &out, patches: &patches, pixels: pixels, weight: weight, bias: bias, batch: batch,
                          channels: channels, height: h, width: w, patch: p, dim: dim, parallelism: .serial)
        var dw = [Float](repeating: 0, count: dim * unfold), db = [Float](repeating: 0, count: dim)
        patchEmbedBackward(dweight: &dw, dbias: &db, dout: r, patches: patches, weight: weight, rows: rows,
                           unfoldWidth: unfold, dim: dim, parallelism: .serial)
        G.check("patch embed dW", variable: weight, analytic: dw, samples: 200) { f($0, bias) }
        G.check("patch embed db", variable: bias, analytic: db) { f(weight, $0) }
    }

    /// Token assembly with registers and masks, and the position table resampled to a non-square
    /// grid, for both of the official interpolations (offset 0.1 plain, offset 0 antialiased) and
    /// the identity case.
    func testTokenAssembly() throws {
        let cases: [(String, PositionInterpolation, Int, Int)] = [
            ("offset 0.1", PositionInterpolation(offset: 0.1, antialias: false), 2, 5),
            ("antialias", PositionInterpolation(offset: 0, antialias: true), 2, 5),
            ("antialias down", PositionInterpolation(offset: 0, antialias: true), 2, 1),
            ("identity", PositionInterpolation(offset: 0.1, antialias: false), 3, 3),
        ]
        for (label, ip, ph, pw) in cases {
            let d = 3, m = 3, regs = 2, batch = 2, np = ph * pw, t = 1 + regs + np
            let c = Config(embedDim: d, depth: 0, numHeads: 1, registerTokens: regs, positionGrid: m, interpolation: ip)
            let rs = try PositionResampling(config: c, patchRows: ph, patchCols: pw, imageHeight: ph * 14, imageWidth: pw * 14)
            XCTAssertEqual(rs.axes == nil, label == "identity")
            let cls = G.values(23, d), table = G.values(24, (1 + m * m) * d), reg = G.values(25, regs * d)
            let mask = G.values(26, d), patchOut = G.values(27, batch * np * d), r = G.values(28, batch * t * d)
            let masks = (0..<(batch * np)).map { $0 % 3 == 1 }
            var scratch = [Float](repeating: 0, count: Swift.max(rs.scratchCount, 1))
            func f(_ cls: [Float], _ table: [Float], _ reg: [Float], _ mask: [Float], _ patchOut: [Float]) -> Double {
                var pos = [Float](repeating: 0, count: (1 + np) * d), tok = [Float](repeating: 0, count: batch * t * d)
                rs.forward(out: &pos, table: table, scratch: &scratch)
                assembleTokensForward(tokens: &tok, patchOut: patchOut, masks: masks, clsToken: cls, registerTokens: reg,
                                      maskToken: mask, position: pos, batch: batch, patches: np, registers: regs, dim: d,
                                      parallelism: .serial)
                return G.dot(r, tok)
            }
            var dpatch = [Float](repeating: 0, count: batch * np * d), dpos = [Float](repeating: 0, count: (1 + np) * d)
            var dcls = [Float](repeating: 0, count: d), dreg = [Float](repeating: 0, count: regs * d)
            var dmask = [Float](repeating: 0, count: d), dtable = [Float](repeating: 0, count: table.count)
            assembleTokensBackward(dpatchOut: &dpatch, dposition: &dpos, dcls: &dcls, dregisters: &dreg, dmask: &dmask,
                                   dtokens: r, masks: masks, batch: batch, patches: np, registers: regs, dim: d,
                                   parallelism: .serial)
            rs.backward(dtable: &dtable, dout: dpos, scratch: &scratch)
            G.check("\(label) dcls", variable: cls, analytic: dcls) { f($0, table, reg, mask, patchOut) }
            G.check("\(label) dpos_embed", variable: table, analytic: dtable) { f(cls, $0, reg, mask, patchOut) }
            G.check("\(label) dregisters", variable: reg, analytic: dreg) { f(cls, table, $0, mask, patchOut) }
            G.check("\(label) dmask_token", variable: mask, analytic: dmask) { f(cls, table, reg, $0, patchOut) }
            G.check("\(label) dpatches", variable: patchOut, analytic: dpatch) { f(cls, table, reg, mask, $0) }
        }
    }

    func testL2NormalizeAndWeightNorm() {
        let rows = 4, cols = 5
        let x = G.values(29, rows * cols, scale: 3), r = G.values(30, rows * cols)
        var y = [Float](repeating: 0, count: rows * cols), n = [Float](repeating: 0, count: rows)
        l2NormalizeForward(out: &y, norms: &n, inp: x, rows: rows, cols: cols, eps: headNormalizeEps)
        var dx = [Float](repeating: 0, count: rows * cols)
        l2NormalizeBackward(dinp: &dx, dout: r, out: y, norms: n, inp: x, rows: rows, cols: cols, eps: headNormalizeEps)
        G.check("l2 normalize dx", variable: x, analytic: dx) { x in
            var y = [Float](repeating: 0, count: rows * cols), n = [Float](repeating: 0, count: rows)
            l2NormalizeForward(out: &y, norms: &n, inp: x, rows: rows, cols: cols, eps: headNormalizeEps)
            return G.dot(r, y)
        }
        let g = G.values(31, rows).map { 1 + $0 / 4 }, v = G.values(32, rows * cols, scale: 2)
        func wn(_ g: [Float], _ v: [Float]) -> Double {
            var w = [Float](repeating: 0, count: rows * cols), vn = [Float](repeating: 0, count: rows)
            weightNormForward(weight: &w, vNorms: &vn, g: g, v: v, rows: rows, cols: cols)
            return G.dot(r, w)
        }
        var w = [Float](repeating: 0, count: rows * cols), vn = [Float](repeating: 0, count: rows)
        weightNormForward(weight: &w, vNorms: &vn, g: g, v: v, rows: rows, cols: cols)
        var dg = [Float](repeating: 0, count: rows), dv = [Float](repeating: 0, count: rows * cols)
        weightNormBackward(dg: &dg, dv: &dv, dweight: r, g: g, v: v, vNorms: vn, rows: rows, cols: cols, parallelism: .serial)
        G.check("weight norm dg", variable: g, analytic: dg) { wn($0, v) }
        G.check("weight norm dv", variable: v, analytic: dv) { wn(g, $0) }
    }

    /// The whole DINO head (3 layers, GELU, L2-normalised bottleneck, weight-normed last layer)
    /// against differences of each of its tensors and of its input.
    func testDINOHead() {
        for layers in [1, 3] {
            let h = HeadConfig(inDim: 6, outDim: 7, hiddenDim: 8, bottleneckDim: 4, layers: layers)
            let rows = 5
            let layout = headLayout(h)
            let params = ParameterBlock(layout: layout)
            let init0 = G.values(33, layout.count, scale: 1.5)
            params.base.update(from: init0, count: layout.count)
            let input = G.values(34, rows * h.inDim, scale: 2), r = G.values(35, rows * h.outDim)
            let acts = HeadActivations(config: h, capacity: rows)
            func f(_ p: [Float], _ x: [Float]) -> Double {
                params.base.update(from: p, count: p.count)
                acts.input.pointer.update(from: x, count: x.count)
                dinoHeadForward(HeadTensors(params, config: h), acts, rows: rows, parallelism: .serial)
                return G.dot(r, acts.logits.pointer)
            }
            _ = f(init0, input)
            let grads = ParameterBlock(layout: layout)
            var dinput = [Float](repeating: 0, count: rows * h.inDim)
            dinoHeadBackward(HeadTensors(params, config: h), HeadTensors(grads, config: h), acts,
                             HeadGradScratch(config: h, capacity: rows), dlogits: r, dinput: &dinput, rows: rows,
                             parallelism: .serial)
            G.check("head(\(layers)) dinput", variable: input, analytic: dinput) { f(init0, $0) }
            for s in layout.slots {
                let all = grads.array(s.name)
                // Perturb one tensor of the flat block at a time.
                let slice = Array(init0[s.offset..<(s.offset + s.count)])
                G.check("head(\(layers)) d\(s.name)", variable: slice, analytic: all) { v in
                    var p = init0
                    p.replaceSubrange(s.offset..<(s.offset + s.count), with: v)
                    return f(p, input)
                }
            }
        }
    }
}
