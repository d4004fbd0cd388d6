import DINOv2
import Kernels

// One pre-norm block (`NestedTensorBlock`, block.py; DINOv3's `SelfAttentionBlock`):
//   x = x + ls1(attn(norm1(x)));  x = x + ls2(ffn(norm2(x)))
// DINOv3's attention adds qkv bias · bias_mask and rotates q and k of the patch tokens (RoPE)
// between the qkv linear and the attention; everything else is the same block.
// Each residual branch runs on every image, or — with stochastic depth — on the images of its
// `BranchSubset`, whose rows are gathered first and whose output is added back with the
// subset's factors: x[img] += scale · ls(branch(x[img])).

/// Training forward: reads `s.input`, fills every buffer of `s` through `s.output`.
public func blockTrainingForward(_ w: BlockTensors, _ s: SavedBlock, config c: Config, batch: Int, tokens: Int,
                                 parallelism: Parallelism) {
    let d = c.embedDim, rows = batch * tokens
    // Attention branch.
    let a = s.attentionSubset
    let attnIn = a.isIdentity ? UnsafePointer(s.input) : gatherImages(s.attentionInput, from: s.input, a, tokens: tokens, dim: d)
    attentionBranchForward(w, s, input: attnIn, images: a.count, config: c, tokens: tokens, parallelism: parallelism)
    s.middle.update(from: s.input, count: rows * d)
    addBranch(x: s.middle, branch: s.attentionBranch, gamma: w.ls1, subset: a, tokens: tokens, dim: d, parallelism: parallelism)
    // FFN branch.
    let f = s.ffnSubset
    let ffnIn = f.isIdentity ? UnsafePointer(s.middle) : gatherImages(s.ffnInput, from: s.middle, f, tokens: tokens, dim: d)
    ffnBranchForward(w, s, input: ffnIn, images: f.count, config: c, tokens: tokens, parallelism: parallelism)
    s.output.update(from: s.middle, count: rows * d)
    addBranch(x: s.output, branch: s.ffnBranch, gamma: w.ls2, subset: f, tokens: tokens, dim: d, parallelism: parallelism)
}

/// Backward: `g.dx` holds dL/d(output) on entry and dL/d(input) on return; parameter gradients
/// accumulate into `dw`.
public func blockBackward(_ w: BlockTensors, _ dw: BlockTensors, _ s: SavedBlock, _ g: BackboneGradScratch,
                          config c: Config, batch: Int, tokens: Int, parallelism: Parallelism) {
    let d = c.embedDim
    // FFN branch: the residual passes dx through; the branch adds its input gradient.
    let f = s.ffnSubset
    if f.isIdentity {
        residualLayerScaleBackward(dbranch: g.dbranch, dgamma: dw.ls2, dx: g.dx, branch: s.ffnBranch, gamma: w.ls2,
                                   rows: batch * tokens, cols: d, parallelism: parallelism)
        ffnBranchBackward(w, dw, s, g, input: s.middle, dinput: g.dx, images: batch, config: c, tokens: tokens,
                          parallelism: parallelism)
    } else {
        let rows = f.count * tokens
        gatherScaledGradient(g.dsubsetOut, from: g.dx, f, tokens: tokens, dim: d)
        residualLayerScaleBackward(dbranch: g.dbranch, dgamma: dw.ls2, dx: g.dsubsetOut, branch: s.ffnBranch,
                                   gamma: w.ls2, rows: rows, cols: d, parallelism: parallelism)
        g.dsubsetIn.update(repeating: 0, count: rows * d)
        ffnBranchBackward(w, dw, s, g, input: s.ffnInput, dinput: g.dsubsetIn, images: f.count, config: c, tokens: tokens,
                          parallelism: parallelism)
        scatterAddImages(g.dx, from: g.dsubsetIn, f, tokens: tokens, dim: d)
    }
    // Attention branch.
    let a = s.attentionSubset
    if a.isIdentity {
        residualLayerScaleBackward(dbranch: g.dbranch, dgamma: dw.ls1, dx: g.dx, branch: s.attentionBranch, gamma: w.ls1,
                                   rows: batch * tokens, cols: d, parallelism: parallelism)
        attentionBranchBackward(w, dw, s, g, input: s.input, dinput: g.dx, images: batch, config: c, tokens: tokens,
                                parallelism: parallelism)
    } else {
        let rows = a.count * tokens
        gatherScaledGradient(g.dsubsetOut, from: g.dx, a, tokens: tokens, dim: d)
        residualLayerScaleBackward(dbranch: g.dbranch, dgamma: dw.ls1, dx: g.dsubsetOut, branch: s.attentionBranch,
                                   gamma: w.ls1, rows: rows, cols: d, parallelism: parallelism)
        g.dsubsetIn.update(repeating: 0, count: rows * d)
        attentionBranchBackward(w, dw, s, g, input: s.attentionInput, dinput: g.dsubsetIn, images: a.count, config: c,
                                tokens: tokens, parallelism: parallelism)
        scatterAddImages(g.dx, from: g.dsubsetIn, a, tokens: tokens, dim: d)
    }
}

// MARK: - Branches

/// attn(norm1(x)) over `images` images of `input`, into `s.attentionBranch` (before LayerScale).
func attentionBranchForward(_ w: BlockTensors, _ s: SavedBlock, input: UnsafePointer<Float>, images: Int, config c: Config,
                            tokens: Int, parallelism: Parallelism) {
    let d = c.embedDim, rows = images * tokens
    layerNormForward(out: s.norm1, mean: s.norm1Mean, rstd: s.norm1Rstd, inp: input, weight: w.norm1Weight,
                     bias: w.norm1Bias, rows: rows, cols: d, eps: c.layerNormEps, parallelism: parallelism)
    var qkvBias = UnsafePointer(w.qkvBias)
    if let mask = w.qkvBiasMask {
        maskedBiasForward(out: s.maskedQKVBias, bias: w.qkvBias, mask: mask, count: 3 * d)
        qkvBias = UnsafePointer(s.maskedQKVBias)
    }
    linearForward(out: s.qkv, inp: s.norm1, weight: w.qkvWeight, bias: qkvBias, rows: rows, inFeatures: d,
                  outFeatures: 3 * d, parallelism: parallelism)
    // s.qkv keeps the rotated q and k: the attention's input, which its backward reads.
    s.rotary?.apply(qkv: s.qkv, batch: images, tokens: tokens, prefix: 1 + c.registerTokens, heads: c.numHeads,
                    parallelism: parallelism)
    attentionForward(out: s.attention, probs: .keep(s.probabilities), qkv: s.qkv, batch: images, tokens: tokens,
                     heads: c.numHeads, headDim: c.headDim, parallelism: parallelism)
    linearForward(out: s.attentionBranch, inp: s.attention, weight: w.projWeight, bias: w.projBias, rows: rows,
                  inFeatures: d, outFeatures: d, parallelism: parallelism)
}

/// ffn(norm2(x)) over `images` images of `input`, into `s.ffnBranch` (before LayerScale).
func ffnBranchForward(_ w: BlockTensors, _ s: SavedBlock, input: UnsafePointer<Float>, images: Int, config c: Config,
                      tokens: Int, parallelism: Parallelism) {
    let d = c.embedDim, rows = images * tokens, h = c.ffnHidden
    layerNormForward(out: s.norm2, mean: s.norm2Mean, rstd: s.norm2Rstd, inp: input, weight: w.norm2Weight,
                     bias: w.norm2Bias, rows: rows, cols: d, eps: c.layerNormEps, parallelism: parallelism)
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
}

/// From `g.dbranch` (the branch output's gradient) back to `dinput` (accumulated).
func attentionBranchBackward(_ w: BlockTensors, _ dw: BlockTensors, _ s: SavedBlock, _ g: BackboneGradScratch,
                             input: UnsafePointer<Float>, dinput: UnsafeMutablePointer<Float>, images: Int, config c: Config,
                             tokens: Int, parallelism: Parallelism) {
    let d = c.embedDim, rows = images * tokens
    linearBackward(dinp: g.dattention, dweight: dw.projWeight, dbias: dw.projBias, dout: g.dbranch, inp: s.attention,
                   weight: w.projWeight, rows: rows, inFeatures: d, outFeatures: d, parallelism: parallelism)
    attentionBackward(dqkv: g.dqkv, dout: g.dattention, qkv: s.qkv, probs: s.probabilities, scratch: g.attentionScratch,
                      batch: images, tokens: tokens, heads: c.numHeads, headDim: c.headDim, parallelism: parallelism)
    s.rotary?.applyTranspose(gradient: g.dqkv, batch: images, tokens: tokens, prefix: 1 + c.registerTokens,
                             heads: c.numHeads, parallelism: parallelism)
    let mask = w.qkvBiasMask
    if mask != nil { g.dmaskedQKVBias.update(repeating: 0, count: 3 * d) }
    linearBackward(dinp: g.dnorm, dweight: dw.qkvWeight, dbias: mask == nil ? dw.qkvBias : g.dmaskedQKVBias,
                   dout: g.dqkv, inp: s.norm1, weight: w.qkvWeight, rows: rows, inFeatures: d, outFeatures: 3 * d,
                   parallelism: parallelism)
    if let mask { maskedBiasBackward(dbias: dw.qkvBias, dmasked: g.dmaskedQKVBias, mask: mask, count: 3 * d) }
    layerNormBackward(dinp: dinput, dweight: dw.norm1Weight, dbias: dw.norm1Bias, dout: g.dnorm, inp: input,
                      mean: s.norm1Mean, rstd: s.norm1Rstd, weight: w.norm1Weight, rows: rows, cols: d,
                      parallelism: parallelism)
}

/// From `g.dbranch` back to `dinput` (accumulated).
func ffnBranchBackward(_ w: BlockTensors, _ dw: BlockTensors, _ s: SavedBlock, _ g: BackboneGradScratch,
                       input: UnsafePointer<Float>, dinput: UnsafeMutablePointer<Float>, images: Int, config c: Config,
                       tokens: Int, parallelism: Parallelism) {
    let d = c.embedDim, rows = images * tokens, h = c.ffnHidden
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
    layerNormBackward(dinp: dinput, dweight: dw.norm2Weight, dbias: dw.norm2Bias, dout: g.dnorm, inp: input,
                      mean: s.norm2Mean, rstd: s.norm2Rstd, weight: w.norm2Weight, rows: rows, cols: d,
                      parallelism: parallelism)
}

// MARK: - Subsets (stochastic depth)

/// x += ls(branch) for every image, or x[img] += scale · (gamma ⊙ branch[j]) for the subset's
/// images (`index_add(x, brange, ls(residual), alpha=B/S)`, or `x + drop_path(ls(residual))`).
func addBranch(x: UnsafeMutablePointer<Float>, branch: UnsafePointer<Float>, gamma: UnsafePointer<Float>?,
               subset: BranchSubset, tokens: Int, dim d: Int, parallelism: Parallelism) {
    if subset.isIdentity {
        residualLayerScaleForward(x: x, branch: branch, gamma: gamma, rows: subset.count * tokens, cols: d,
                                  parallelism: parallelism)
        return
    }
    for j in 0..<subset.count {
        let scale = subset.scales[j]
        let dst = x + subset.images[j] * tokens * d, src = branch + j * tokens * d
        for e in 0..<(tokens * d) {
            let v = gamma.map { $0[e % d] * src[e] } ?? src[e]
            dst[e] = dst[e] + scale * v
        }
    }
}

/// Copies the subset's images' rows of `src` into `dst`, in subset order; returns `dst`.
func gatherImages(_ dst: UnsafeMutablePointer<Float>, from src: UnsafePointer<Float>, _ subset: BranchSubset,
                  tokens: Int, dim d: Int) -> UnsafePointer<Float> {
    for j in 0..<subset.count {
        (dst + j * tokens * d).update(from: src + subset.images[j] * tokens * d, count: tokens * d)
    }
    return UnsafePointer(dst)
}

/// dst[j] = scale_j · dx[img_j]: the gradient reaching the subset branch's LayerScale output.
func gatherScaledGradient(_ dst: UnsafeMutablePointer<Float>, from dx: UnsafePointer<Float>, _ subset: BranchSubset,
                          tokens: Int, dim d: Int) {
    for j in 0..<subset.count {
        let scale = subset.scales[j], src = dx + subset.images[j] * tokens * d, o = dst + j * tokens * d
        for e in 0..<(tokens * d) { o[e] = scale * src[e] }
    }
}

/// dx[img_j] += src[j].
func scatterAddImages(_ dx: UnsafeMutablePointer<Float>, from src: UnsafePointer<Float>, _ subset: BranchSubset,
                      tokens: Int, dim d: Int) {
    for j in 0..<subset.count {
        let o = dx + subset.images[j] * tokens * d, s = src + j * tokens * d
        for e in 0..<(tokens * d) { o[e] += s[e] }
    }
}
