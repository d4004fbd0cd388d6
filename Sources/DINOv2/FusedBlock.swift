import Kernels

/// The buffers of the inference pipeline, all from the workspace (sizes for `rows` token rows).
struct FusedBuffers {
    /// (rows, D): the residual stream, updated in place.
    let residual: UnsafeMutablePointer<Float>
    /// (rows, D): the LayerNorm output the next linear layer reads (norm1, then norm2).
    let normed: UnsafeMutablePointer<Float>
    /// (rows, 3D).
    let qkv: UnsafeMutablePointer<Float>
    /// (rows, D): heads concatenated.
    let attention: UnsafeMutablePointer<Float>
    /// (rows, D): partial sums of proj and fc2 (their result goes straight into the residual).
    let branch: UnsafeMutablePointer<Float>
    /// (rows, hidden) GELU(fc1), or (rows, 2·hidden) w12 output for SwiGLU.
    let hidden: UnsafeMutablePointer<Float>
    /// (rows, hidden) silu(x1)·x2 for SwiGLU; `hidden` otherwise.
    let gated: UnsafeMutablePointer<Float>
    /// `attentionScratchCount(tokens:headDim:parallelism:)` floats.
    let attentionScratch: UnsafeMutablePointer<Float>
}

extension Model {
    /// One block for inference (block.py L111-113), the same math as `blockForward` in five
    /// parallel steps, each elementwise op fused into a GEMM's last pass over its tiles:
    ///   qkv    = normed · Wqkvᵀ + b
    ///   attn   = fused attention(qkv)
    ///   x     += ls1 ⊙ (attn · Wprojᵀ + b);  normed = norm2(x)       (LayerNorm per finished row block)
    ///   hidden = GELU(normed · Wfc1ᵀ + b)                             (SwiGLU: w12, then the gate)
    ///   x     += ls2 ⊙ (hidden · Wfc2ᵀ + b); normed = next.norm1(x)  (when there is a next block)
    /// On entry `normed` holds norm1(x) of this block.
    func fusedBlockForward(_ index: Int, _ buf: FusedBuffers, batch: Int, tokens: Int, normNext: Bool,
                           profile: ForwardProfile? = nil) {
        let c = config, rows = batch * tokens, eps = c.layerNormEps
        let w = parameters.blocks[index], pw = packed.blocks[index]
        let p = parallelism
        let r = Double(rows), d = Double(c.embedDim), h = Double(c.ffnHidden), n = Double(tokens)

        profile.measure("qkv", flops: 2 * r * d * 3 * d) {
            linearForward(out: buf.qkv, inp: buf.normed, weight: pw.qkv, bias: w.qkvBias.pointer, rows: rows, parallelism: p)
        }
        profile.measure("attention", flops: 4 * Double(batch) * n * n * d) {
            attentionForward(out: buf.attention, qkv: buf.qkv, batch: batch, tokens: tokens, heads: c.numHeads,
                             headDim: c.headDim, scratch: buf.attentionScratch, parallelism: p)
        }
        let norm2 = LayerNormTarget(out: buf.normed, weight: w.norm2Weight.pointer, bias: w.norm2Bias.pointer, eps: eps)
        profile.measure("proj + ls1 residual + norm2", flops: 2 * r * d * d) {
            linearForward(out: buf.branch, inp: buf.attention, weight: pw.proj, bias: w.projBias.pointer, rows: rows,
                          epilogue: .residual(buf.residual, gamma: w.ls1?.pointer, norm: norm2), parallelism: p)
        }
        switch c.ffn {
        case .mlp:
            profile.measure("fc1 + GELU", flops: 2 * r * d * h) {
                linearForward(out: buf.hidden, inp: buf.normed, weight: pw.fc1, bias: w.fc1Bias.pointer, rows: rows,
                              epilogue: .gelu, parallelism: p)
            }
        case .swiglu:
            profile.measure("w12", flops: 2 * r * d * 2 * h) {
                linearForward(out: buf.hidden, inp: buf.normed, weight: pw.fc1, bias: w.fc1Bias.pointer, rows: rows,
                              parallelism: p)
            }
            profile.measure("SwiGLU gate") {
                swigluForward(out: buf.gated, inp: buf.hidden, rows: rows, hidden: c.ffnHidden, parallelism: p)
            }
        }
        var next: LayerNormTarget?
        if normNext, index + 1 < parameters.blocks.count {
            let nb = parameters.blocks[index + 1]
            next = LayerNormTarget(out: buf.normed, weight: nb.norm1Weight.pointer, bias: nb.norm1Bias.pointer, eps: eps)
        }
        profile.measure(c.ffn == .mlp ? "fc2 + ls2 residual + next norm1" : "w3 + ls2 residual + next norm1",
                        flops: 2 * r * h * d) {
            linearForward(out: buf.branch, inp: buf.gated, weight: pw.fc2, bias: w.fc2Bias.pointer, rows: rows,
                          epilogue: .residual(buf.residual, gamma: w.ls2?.pointer, norm: next), parallelism: p)
        }
    }
}
