import DINOv2
import Kernels

// The backbone in training mode (`forward_features` with masks, no drop path): patch embedding,
// token assembly, blocks, final norm. Outputs stay in the activations: `normOut` is x_norm for
// every token (cls at row b·tokens, patches after the registers). DINOv3: no position table
// (RoPE inside the blocks), and with untied norms `cls_norm` on the cls and storage rows.

/// Training forward over `a.batch` images, `pixels` (batch, C, H, W) contiguous Float32.
/// `masks` (batch·P bools, true = mask token) or nil. Every branch runs on every image.
public func backboneForward(_ w: BackboneTensors, _ a: BackboneActivations, pixels: UnsafePointer<Float>,
                            masks: UnsafePointer<Bool>?, parallelism: Parallelism) {
    for s in a.blocks {
        s.attentionSubset.setIdentity(batch: a.batch)
        s.ffnSubset.setIdentity(batch: a.batch)
    }
    backboneForwardWithSubsets(w, a, pixels: pixels, masks: masks, parallelism: parallelism)
}

/// The training forward with stochastic depth: each block's branch subsets are drawn from
/// `stochasticDepth` first (the activations must have been made with `stochasticDepth: true`
/// when its rate is non-zero).
public func backboneForward(_ w: BackboneTensors, _ a: BackboneActivations, pixels: UnsafePointer<Float>,
                            masks: UnsafePointer<Bool>?, stochasticDepth: inout StochasticDepth,
                            parallelism: Parallelism) {
    let depth = a.blocks.count
    for (i, s) in a.blocks.enumerated() {
        let r = stochasticDepth.rate(block: i, depth: depth)
        precondition(r <= 0 || a.supportsStochasticDepth, "activations were made without room for stochastic depth")
        stochasticDepth.draw(s.attentionSubset, batch: a.batch, rate: r)
        stochasticDepth.draw(s.ffnSubset, batch: a.batch, rate: r)
    }
    backboneForwardWithSubsets(w, a, pixels: pixels, masks: masks, parallelism: parallelism)
}

func backboneForwardWithSubsets(_ w: BackboneTensors, _ a: BackboneActivations, pixels: UnsafePointer<Float>,
                                masks: UnsafePointer<Bool>?, parallelism: Parallelism) {
    let c = a.config, d = c.embedDim, np = a.batch * a.patches
    if let masks {
        a.masks.update(from: masks, count: np)
        a.hasMasks = true
    } else {
        a.hasMasks = false
    }
    patchEmbedForward(out: a.patchOut, patches: a.unfolded, pixels: pixels, weight: w.patchWeight, bias: w.patchBias,
                      batch: a.batch, channels: c.inChannels, height: a.height, width: a.width, patch: c.patchSize,
                      dim: d, parallelism: parallelism)
    var position: UnsafePointer<Float>?
    if let resampling = a.resampling, let table = w.posEmbed {
        resampling.forward(out: a.position, table: table, scratch: a.positionScratch)
        position = UnsafePointer(a.position)
    }
    assembleTokensForward(tokens: a.embedded, patchOut: a.patchOut, masks: a.hasMasks ? UnsafePointer(a.masks) : nil,
                          clsToken: w.clsToken, registerTokens: w.registerTokens, maskToken: w.maskToken,
                          position: position, batch: a.batch, patches: a.patches, registers: c.registerTokens,
                          dim: d, parallelism: parallelism)
    for (i, s) in a.blocks.enumerated() {
        blockTrainingForward(w.blocks[i], s, config: c, batch: a.batch, tokens: a.tokens, parallelism: parallelism)
    }
    finalNormForward(w, a, parallelism: parallelism)
}

/// Backward from `dnormOut` (rows, D), dL/dx_norm for every token (zeros where a token feeds no
/// loss); parameter gradients accumulate into `dw`.
public func backboneBackward(_ w: BackboneTensors, _ dw: BackboneTensors, _ a: BackboneActivations,
                             _ g: BackboneGradScratch, dnormOut: UnsafePointer<Float>, parallelism: Parallelism) {
    let c = a.config, d = c.embedDim
    precondition(a.rows <= g.rowCapacity, "backward scratch is too small for this pass")
    g.dx.update(repeating: 0, count: a.rows * d)
    finalNormBackward(w, dw, a, dx: g.dx, dnormOut: dnormOut, parallelism: parallelism)
    for i in stride(from: a.blocks.count - 1, through: 0, by: -1) {
        blockBackward(w.blocks[i], dw.blocks[i], a.blocks[i], g, config: c, batch: a.batch, tokens: a.tokens,
                      parallelism: parallelism)
    }
    let table = a.resampling.flatMap { r in dw.posEmbed.map { (r, $0) } }
    assembleTokensBackward(dpatchOut: g.dpatchOut, dposition: table == nil ? nil : g.dposition, dcls: dw.clsToken,
                           dregisters: dw.registerTokens, dmask: dw.maskToken, dtokens: g.dx,
                           masks: a.hasMasks ? UnsafePointer(a.masks) : nil, batch: a.batch, patches: a.patches,
                           registers: c.registerTokens, dim: d, parallelism: parallelism)
    if let (resampling, dtable) = table {
        resampling.backward(dtable: dtable, dout: g.dposition, scratch: g.positionScratch)
    }
    patchEmbedBackward(dweight: dw.patchWeight, dbias: dw.patchBias, dout: g.dpatchOut, patches: a.unfolded,
                       weight: w.patchWeight, rows: a.batch * a.patches, unfoldWidth: c.inChannels * c.patchSize * c.patchSize,
                       dim: d, parallelism: parallelism)
}

/// The final norm of every token: `norm`, or with DINOv3's untied norms `cls_norm` on each
/// image's cls and storage rows and `norm` on its patch rows (forward_features: x_norm_cls_reg,
/// x_norm_patch). Row statistics land in the same rows either way.
func finalNormForward(_ w: BackboneTensors, _ a: BackboneActivations, parallelism: Parallelism) {
    let c = a.config, d = c.embedDim
    guard let clsWeight = w.classNormWeight, let clsBias = w.classNormBias else {
        layerNormForward(out: a.normOut, mean: a.normMean, rstd: a.normRstd, inp: a.prenorm, weight: w.normWeight,
                         bias: w.normBias, rows: a.rows, cols: d, eps: c.layerNormEps, parallelism: parallelism)
        return
    }
    for (first, count, weight, bias) in finalNormSpans(a, norm: (w.normWeight, w.normBias), classNorm: (clsWeight, clsBias)) {
        layerNormForward(out: a.normOut + first * d, mean: a.normMean + first, rstd: a.normRstd + first,
                         inp: a.prenorm + first * d, weight: weight, bias: bias, rows: count, cols: d,
                         eps: c.layerNormEps, parallelism: parallelism)
    }
}

/// Backward of `finalNormForward`: `dx` (rows, D) ← dL/d(prenorm); the norms' gradients accumulate.
func finalNormBackward(_ w: BackboneTensors, _ dw: BackboneTensors, _ a: BackboneActivations,
                       dx: UnsafeMutablePointer<Float>, dnormOut: UnsafePointer<Float>, parallelism: Parallelism) {
    let d = a.config.embedDim
    guard let clsWeight = w.classNormWeight, let clsBias = w.classNormBias, let dclsWeight = dw.classNormWeight,
          let dclsBias = dw.classNormBias else {
        layerNormBackward(dinp: dx, dweight: dw.normWeight, dbias: dw.normBias, dout: dnormOut, inp: a.prenorm,
                          mean: a.normMean, rstd: a.normRstd, weight: w.normWeight, rows: a.rows, cols: d,
                          parallelism: parallelism)
        return
    }
    let weights = finalNormSpans(a, norm: (w.normWeight, w.normBias), classNorm: (clsWeight, clsBias))
    let grads = finalNormSpans(a, norm: (dw.normWeight, dw.normBias), classNorm: (dclsWeight, dclsBias))
    for (span, grad) in zip(weights, grads) {
        let first = span.first
        layerNormBackward(dinp: dx + first * d, dweight: grad.weight, dbias: grad.bias, dout: dnormOut + first * d,
                          inp: a.prenorm + first * d, mean: a.normMean + first, rstd: a.normRstd + first,
                          weight: span.weight, rows: span.count, cols: d, parallelism: parallelism)
    }
}

/// The runs of rows each untied norm covers: per image, 1 + R prefix rows (`cls_norm`), then
/// the patch rows (`norm`).
private func finalNormSpans(_ a: BackboneActivations,
                            norm: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>),
                            classNorm: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>))
    -> [(first: Int, count: Int, weight: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>)] {
    let prefix = 1 + a.config.registerTokens
    return (0..<a.batch).flatMap { b in
        [(b * a.tokens, prefix, classNorm.0, classNorm.1), (b * a.tokens + prefix, a.patches, norm.0, norm.1)]
    }
}
