import Kernels

/// One pre-norm transformer block (`NestedTensorBlock` in evaluation, block.py L111-113):
///   x = x + ls1(attn(norm1(x)))
///   x = x + ls2(ffn(norm2(x)))
/// over `rows` = batch · tokens rows of width D; `acts.residual` holds x and is updated in place.
func blockForward(_ acts: BlockActivations, _ w: BlockParameters, config c: Config,
                  batch: Int, tokens: Int, parallelism: Parallelism) {
    let d = c.embedDim, rows = batch * tokens, eps = c.layerNormEps
    layerNormForward(out: acts.norm1, mean: acts.norm1Mean, rstd: acts.norm1Rstd, inp: acts.residual,
                     weight: w.norm1Weight.pointer, bias: w.norm1Bias.pointer, rows: rows, cols: d, eps: eps,
                     parallelism: parallelism)
    linearForward(out: acts.qkv, inp: acts.norm1, weight: w.qkvWeight.pointer, bias: w.qkvBias.pointer,
                  rows: rows, inFeatures: d, outFeatures: 3 * d, parallelism: parallelism)
    attentionForward(out: acts.attention, probs: acts.probabilities, qkv: acts.qkv, batch: batch, tokens: tokens,
                     heads: c.numHeads, headDim: c.headDim, parallelism: parallelism)
    linearForward(out: acts.attentionBranch, inp: acts.attention, weight: w.projWeight.pointer, bias: w.projBias.pointer,
                  rows: rows, inFeatures: d, outFeatures: d, parallelism: parallelism)
    residualLayerScaleForward(x: acts.residual, branch: acts.attentionBranch, gamma: w.ls1?.pointer,
                              rows: rows, cols: d, parallelism: parallelism)

    layerNormForward(out: acts.norm2, mean: acts.norm2Mean, rstd: acts.norm2Rstd, inp: acts.residual,
                     weight: w.norm2Weight.pointer, bias: w.norm2Bias.pointer, rows: rows, cols: d, eps: eps,
                     parallelism: parallelism)
    let h = c.ffnHidden
    switch c.ffn {
    case .mlp:
        linearForward(out: acts.hidden, inp: acts.norm2, weight: w.fc1Weight.pointer, bias: w.fc1Bias.pointer,
                      rows: rows, inFeatures: d, outFeatures: h, parallelism: parallelism)
        geluForward(out: acts.gated, inp: acts.hidden, count: rows * h, parallelism: parallelism)
    case .swiglu:
        linearForward(out: acts.hidden, inp: acts.norm2, weight: w.fc1Weight.pointer, bias: w.fc1Bias.pointer,
                      rows: rows, inFeatures: d, outFeatures: 2 * h, parallelism: parallelism)
        swigluForward(out: acts.gated, inp: acts.hidden, rows: rows, hidden: h, parallelism: parallelism)
    }
    linearForward(out: acts.ffnBranch, inp: acts.gated, weight: w.fc2Weight.pointer, bias: w.fc2Bias.pointer,
                  rows: rows, inFeatures: h, outFeatures: d, parallelism: parallelism)
    residualLayerScaleForward(x: acts.residual, branch: acts.ffnBranch, gamma: w.ls2?.pointer,
                              rows: rows, cols: d, parallelism: parallelism)
}
