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

// The inference forward of the blocks (block.py L111-113):
//   x = x + ls1(attn(norm1(x)));  x = x + ls2(ffn(norm2(x)))
// with every elementwise op fused into a GEMM's last pass over its tiles. Within one token row,
// everything from proj to the next block's qkv depends only on that row:
//   x      += ls1 ⊙ (attn · Wprojᵀ + b);  normed = norm2(x)        (LayerNorm per finished row block)
//   hidden  = GELU(normed · Wfc1ᵀ + b)                               (SwiGLU: w12, then the gate)
//   x      += ls2 ⊙ (hidden · Wfc2ᵀ + b); normed = next.norm1(x)
//   qkv     = normed · Wqkv(next)ᵀ + b
// Two ways to share that chain between threads (`runPass` picks by row count):
// - many rows: each thread takes ranges of rows through the whole chain (`rowStage` with
//   `.serial`), and only the attention, which mixes the rows of an image, needs all threads to
//   meet before and after it;
// - a pass of one or two images (a few hundred rows): each GEMM is split by output columns over
//   all threads (`rowStage` over every row with the model's parallelism; `linearForward` then
//   gives each thread a range of panel groups to take in order and steal from, and runs the
//   LayerNorms after), so every weight panel is read once per pass rather than once per thread,
//   and a thread slowed by another process costs one small task rather than its fixed half.
extension Model {
    /// Runs `body` over `rows` in ranges of about 144 rows (the GEMM's row block) in whole tiles,
    /// which the threads take as they go, so that a thread slowed by another process hands rows to
    /// the others. (`runPass` splits passes of fewer than 288 rows per thread by columns instead.)
    func parallelRows(_ rows: Int, _ body: (Range<Int>) -> Void) {
        let tile = KernelDispatch.tileRows, threads = parallelism.threads
        let perThread = (rows + threads * 144 - 1) / (threads * 144)
        let share = (rows + threads * perThread - 1) / (threads * perThread)
        let chunk = (share + tile - 1) / tile * tile
        parallelForDynamic(rows, chunk: chunk, parallelism) { range, _ in body(range) }
    }

    /// norm1 and qkv of the first block for `range`, on `parallel`'s threads (`.serial` inside a
    /// row loop).
    func firstRowStage(_ range: Range<Int>, _ buf: FusedBuffers, parallel: Parallelism = .serial,
                       profile: ForwardProfile?) {
        let c = config, d = c.embedDim, w = parameters.blocks[0], r0 = range.lowerBound, n = range.count
        profile.measure("norm1 of block 0", threads: parallel.threads) {
            layerNormForward(out: buf.normed + r0 * d, mean: nil, rstd: nil, inp: buf.residual + r0 * d,
                             weight: w.norm1Weight.pointer, bias: w.norm1Bias.pointer, rows: n, cols: d,
                             eps: c.layerNormEps, parallelism: parallel)
        }
        qkvStage(0, range, buf, parallel: parallel, profile: profile)
    }

    func qkvStage(_ index: Int, _ range: Range<Int>, _ buf: FusedBuffers, parallel: Parallelism = .serial,
                  profile: ForwardProfile?) {
        let c = config, d = c.embedDim, r0 = range.lowerBound, n = range.count
        let w = parameters.blocks[index]
        profile.measure("qkv", flops: 2 * Double(n * d * 3 * d), threads: parallel.threads) {
            linearForward(out: buf.qkv + r0 * 3 * d, inp: buf.normed + r0 * d, weight: w.qkv, bias: w.qkvBias.pointer,
                          rows: n, parallelism: parallel)
        }
    }

    /// Block `index`'s attention over the whole batch (all threads); with DINOv3's `rope`, the
    /// patch tokens' queries and keys are rotated first (`rope_apply` before the product).
    func attentionStage(_ index: Int, _ buf: FusedBuffers, batch: Int, tokens: Int, rope: RotaryPositions?) {
        let c = config
        rope?.apply(qkv: buf.qkv, batch: batch, tokens: tokens, prefix: 1 + c.registerTokens, heads: c.numHeads,
                    parallelism: parallelism)
        attentionForward(out: buf.attention, qkv: buf.qkv, batch: batch, tokens: tokens, heads: c.numHeads,
                         headDim: c.headDim, scratch: buf.attentionScratch, parallelism: parallelism)
    }

    /// Block `index` from proj to the end for the rows in `range`, then, if `next`, the next
    /// block's norm1 (fused into fc2) and qkv.
    func rowStage(_ index: Int, _ range: Range<Int>, _ buf: FusedBuffers, next: Bool, parallel: Parallelism = .serial,
                  profile: ForwardProfile?) {
        let c = config, d = c.embedDim, eps = c.layerNormEps, r0 = range.lowerBound, n = range.count
        let w = parameters.blocks[index]
        let hiddenWidth = c.ffn == .swiglu ? 2 * c.ffnHidden : c.ffnHidden
        let rows = Double(n), dd = Double(d), h = Double(c.ffnHidden)
        let residual = buf.residual + r0 * d, normed = buf.normed + r0 * d, branch = buf.branch + r0 * d
        let hidden = buf.hidden + r0 * hiddenWidth

        let norm2 = LayerNormTarget(out: normed, weight: w.norm2Weight.pointer, bias: w.norm2Bias.pointer, eps: eps)
        profile.measure("proj + ls1 residual + norm2", flops: 2 * rows * dd * dd, threads: parallel.threads) {
            linearForward(out: branch, inp: buf.attention + r0 * d, weight: w.proj, bias: w.projBias.pointer, rows: n,
                          epilogue: .residual(residual, gamma: w.ls1?.pointer, norm: norm2), parallelism: parallel)
        }
        var gated = hidden
        switch c.ffn {
        case .mlp:
            profile.measure("fc1 + GELU", flops: 2 * rows * dd * h, threads: parallel.threads) {
                linearForward(out: hidden, inp: normed, weight: w.fc1, bias: w.fc1Bias.pointer, rows: n,
                              epilogue: .gelu, parallelism: parallel)
            }
        case .swiglu:
            gated = buf.gated + r0 * c.ffnHidden
            profile.measure("w12", flops: 2 * rows * dd * 2 * h, threads: parallel.threads) {
                linearForward(out: hidden, inp: normed, weight: w.fc1, bias: w.fc1Bias.pointer, rows: n,
                              parallelism: parallel)
            }
            profile.measure("SwiGLU gate", threads: parallel.threads) {
                swigluForward(out: gated, inp: hidden, rows: n, hidden: c.ffnHidden, parallelism: parallel)
            }
        }
        var norm1: LayerNormTarget?
        if next {
            let nb = parameters.blocks[index + 1]
            norm1 = LayerNormTarget(out: normed, weight: nb.norm1Weight.pointer, bias: nb.norm1Bias.pointer, eps: eps)
        }
        profile.measure(c.ffn == .mlp ? "fc2 + ls2 residual + next norm1" : "w3 + ls2 residual + next norm1",
                        flops: 2 * rows * h * dd, threads: parallel.threads) {
            linearForward(out: branch, inp: gated, weight: w.fc2, bias: w.fc2Bias.pointer, rows: n,
                          epilogue: .residual(residual, gamma: w.ls2?.pointer, norm: norm1), parallelism: parallel)
        }
        if next { qkvStage(index + 1, range, buf, parallel: parallel, profile: profile) }
    }
}
