import DINOv2
import Kernels

// One pre-norm block (`NestedTensorBlock` without drop path, block.py):
//   x = x + ls1(attn(norm1(x)));  x = x + ls2(ffn(norm2(x)))

/// Training forward: reads `s.input`, fills every buffer of `s` through `s.output`.
public func blockTrainingForward(_ w: BlockTensors, _ s: SavedBlock, config c: Config, batch: Int, tokens: Int,
                                 parallelism: Parallelism) {
    let d = c.embedDim, rows = batch * tokens, eps = c.layerNormEps, h = c.ffnHidden
    layerNormForward(out: s.norm1, mean: s.norm1Mean, rstd: s.norm1Rstd, inp: s.input, weight: w.norm1Weight,
                     bias: w.norm1Bias, rows: rows, cols: d, eps: eps, parallelism: parallelism)
    linearForward(out: s.qkv, inp: s.norm1, weight: w.qkvWeight, bias: w.qkvBias, rows: rows, inFeatures: d,
                  outFeatures: 3 * d, parallelism: parallelism)
    attentionForward(out: s.attention, probs: .keep(s.probabilities), qkv: s.qkv, batch: batch, tokens: tokens,
                     heads: c.numHeads, headDim: c.headDim, parallelism: parallelism)
    linearForward(out: s.attentionBranch, inp: s.attention, weight: w.projWeight, bias: w.projBias, rows: rows,
                  inFeatures: d, outFeatures: d, parallelism: parallelism)
    s.middle.update(from: s.input, count: rows * d)
    residualLayerScaleForward(x: s.middle, branch: s.attentionBranch, gamma: w.ls1, rows: rows, cols: d,
                              parallelism: parallelism)
    layerNormForward(out: s.norm2, mean: s.norm2Mean, rstd: s.norm2Rstd, inp: s.middle, weight: w.norm2Weight,
                     bias: w.norm2Bias, rows: rows, cols: d, eps: eps, parallelism: parallelism)
    switch c.ffn {
    case .mlp:
        linearForward(out: s.hidden, inp: s.norm2, weight: w.fc1Weight, bias: w.fc1Bias, rows: rows, inFeatures: d,
                      outFeatures: h, parallelism: parallelism)
        geluForward(out: s.gated, inp: s.hidden, count: rows * h, parallelism: parallelism)
    case .swiglu:
        linearForward(out: s.hidden, inp: s.norm2, weight: w.fc1Weight, bias: w.fc1Bias, rows: rows, inFeatures: d,
                      outFeatures: 2 * h, parallelism: parallelism)
        swigluForward(out: s.gated, inp: s.hidden, rows: rows, hidden: h, parallelism: parallelism)
    }
    linearForward(out: s.ffnBranch, inp: s.gated, weight: w.fc2Weight, bias: w.fc2Bias, rows: rows, inFeatures: h,
                  outFeatures: d, parallelism: parallelism)
    s.output.update(from: s.middle, count: rows * d)
    residualLayerScaleForward(x: s.output, branch: s.ffnBranch, gamma: w.ls2, rows: rows, cols: d,
                              parallelism: parallelism)
}

/// Backward: `g.dx` holds dL/d(output) on entry and dL/d(input) on return; parameter gradients
/// accumulate into `dw`.
public func blockBackward(_ w: BlockTensors, _ dw: BlockTensors, _ s: SavedBlock, _ g: BackboneGradScratch,
                          config c: Config, batch: Int, tokens: Int, parallelism: Parallelism) {
    let d = c.embedDim, rows = batch * tokens, h = c.ffnHidden
    // FFN branch.
    residualLayerScaleBackward(dbranch: g.dbranch, dgamma: dw.ls2, dx: g.dx, branch: s.ffnBranch, gamma: w.ls2,
                               rows: rows, cols: d, parallelism: parallelism)
    linearBackward(dinp: g.dgated, dweight: dw.fc2Weight, dbias: dw.fc2Bias, dout: g.dbranch, inp: s.gated,
                   weight: w.fc2Weight, rows: rows, inFeatures: h, outFeatures: d, parallelism: parallelism)
    let fc1Width: Int
    switch c.ffn {
    case .mlp:
        fc1Width = h
        geluBackward(dinp: g.dhidden, dout: g.dgated, inp: s.hidden, count: rows * h, parallelism: parallelism)
    case .swiglu:
        fc1Width = 2 * h
        swigluBackward(dinp: g.dhidden, dout: g.dgated, inp: s.hidden, rows: rows, hidden: h, parallelism: parallelism)
    }
    linearBackward(dinp: g.dnorm, dweight: dw.fc1Weight, dbias: dw.fc1Bias, dout: g.dhidden, inp: s.norm2,
                   weight: w.fc1Weight, rows: rows, inFeatures: d, outFeatures: fc1Width, parallelism: parallelism)
    layerNormBackward(dinp: g.dx, dweight: dw.norm2Weight, dbias: dw.norm2Bias, dout: g.dnorm, inp: s.middle,
                      mean: s.norm2Mean, rstd: s.norm2Rstd, weight: w.norm2Weight, rows: rows, cols: d,
                      parallelism: parallelism)
    // Attention branch.
    residualLayerScaleBackward(dbranch: g.dbranch, dgamma: dw.ls1, dx: g.dx, branch: s.attentionBranch, gamma: w.ls1,
                               rows: rows, cols: d, parallelism: parallelism)
    linearBackward(dinp: g.dattention, dweight: dw.projWeight, dbias: dw.projBias, dout: g.dbranch, inp: s.attention,
                   weight: w.projWeight, rows: rows, inFeatures: d, outFeatures: d, parallelism: parallelism)
    attentionBackward(dqkv: g.dqkv, dout: g.dattention, qkv: s.qkv, probs: s.probabilities, scratch: g.attentionScratch,
                      batch: batch, tokens: tokens, heads: c.numHeads, headDim: c.headDim, parallelism: parallelism)
    linearBackward(dinp: g.dnorm, dweight: dw.qkvWeight, dbias: dw.qkvBias, dout: g.dqkv, inp: s.norm1,
                   weight: w.qkvWeight, rows: rows, inFeatures: d, outFeatures: 3 * d, parallelism: parallelism)
    layerNormBackward(dinp: g.dx, dweight: dw.norm1Weight, dbias: dw.norm1Bias, dout: g.dnorm, inp: s.input,
                      mean: s.norm1Mean, rstd: s.norm1Rstd, weight: w.norm1Weight, rows: rows, cols: d,
                      parallelism: parallelism)
}
