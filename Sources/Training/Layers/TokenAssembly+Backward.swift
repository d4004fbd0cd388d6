import DINOv2
import Kernels

// `prepare_tokens_with_masks` (vision_transformer.py; spec §1.5–1.6) after the patch embedding:
// mask-token substitution, the cls token, the position embedding (interpolated to the patch
// grid), then the registers after cls. Token order [cls, reg_1…reg_R, patch_0…patch_{hw−1}].
// DINOv3 assembles the same order ([cls, storage, patches]) without a position table: its
// positions enter every attention as RoPE instead.

/// The position table resampled to one input size — the global crops as well as the local ones
/// whenever their grid is not the table's: `interpolate_pos_encoding` as a fixed linear map (a
/// separable bicubic over the M × M grid, cls row copied), so its backward is the transpose of
/// the same taps and weights (Kernels' `ResampleAxis`), which is what autograd's
/// `upsample_bicubic2d_backward` and `_upsample_bicubic2d_aa_backward` compute.
public struct PositionResampling {
    public let grid: Int, patchRows: Int, patchCols: Int, dim: Int
    /// nil when the official code uses the table as stored (h·w == M² and H == W).
    public let axes: (rows: ResampleAxis, cols: ResampleAxis)?

    public init(config c: Config, patchRows h: Int, patchCols w: Int, imageHeight: Int, imageWidth: Int) throws {
        grid = c.positionGrid
        patchRows = h
        patchCols = w
        dim = c.embedDim
        // The inference forward's taps (DINOv2), so training resamples exactly as it does.
        axes = try c.interpolation.axes(grid: c.positionGrid, patchRows: h, patchCols: w,
                                        imageHeight: imageHeight, imageWidth: imageWidth)
    }

    /// Floats of scratch `forward` and `backward` need.
    public var scratchCount: Int {
        guard let a = axes else { return 0 }
        return BicubicResize.scratchCount(rows: a.rows, cols: a.cols, channels: dim)
    }

    /// `out` (1 + h·w, D) ← the table (1 + M², D) as the forward adds it to the tokens.
    public func forward(out: UnsafeMutablePointer<Float>, table: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>) {
        guard let a = axes else {
            out.update(from: table, count: (1 + grid * grid) * dim)
            return
        }
        out.update(from: table, count: dim)
        BicubicResize.resizeChannelsLast(out: out + dim, inp: table + dim, channels: dim, rows: a.rows, cols: a.cols,
                                         scratch: scratch)
    }

    /// `dtable` (1 + M², D) += the transpose of `forward` applied to `dout` (1 + h·w, D): the
    /// height taps scattered back onto the width-pass rows, then the width taps onto the grid.
    public func backward(dtable: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>) {
        let d = dim
        guard let (rows, cols) = axes else {
            for i in 0..<((1 + grid * grid) * d) { dtable[i] += dout[i] }
            return
        }
        for i in 0..<d { dtable[i] += dout[i] }
        let outW = cols.outputSize, inW = cols.inputSize
        let g = dout + d, dt = dtable + d
        // scratch[iy, xo, :] = Σ_{yo, j: iy(yo, j) = iy} wy[yo, j] · dout[yo, xo, :]
        if rows.isCopy {
            scratch.update(from: g, count: rows.outputSize * outW * d)
        } else {
            scratch.update(repeating: 0, count: rows.inputSize * outW * d)
            for yo in 0..<rows.outputSize {
                for j in 0..<rows.counts[yo] {
                    let wy = rows.weights[yo * rows.stride + j], iy = rows.indices[yo * rows.stride + j]
                    let src = g + yo * outW * d, dst = scratch + iy * outW * d
                    for e in 0..<(outW * d) { dst[e] += wy * src[e] }
                }
            }
        }
        // dtable[y, ix, :] += Σ_{xo, i: ix(xo, i) = ix} wx[xo, i] · scratch[y, xo, :]
        for y in 0..<rows.inputSize {
            let srcRow = scratch + y * outW * d, dstRow = dt + y * inW * d
            for xo in 0..<outW {
                let src = srcRow + xo * d
                if cols.isCopy {
                    let dst = dstRow + xo * d
                    for c in 0..<d { dst[c] += src[c] }
                    continue
                }
                for i in 0..<cols.counts[xo] {
                    let wx = cols.weights[xo * cols.stride + i], ix = cols.indices[xo * cols.stride + i]
                    let dst = dstRow + ix * d
                    for c in 0..<d { dst[c] += wx * src[c] }
                }
            }
        }
    }
}

/// Forward: `tokens` (batch, 1 + R + P, D) from the patch embedding `patchOut` (batch·P, D):
/// cls + pos[0]; the registers as they are; each patch (or the mask token where `masks` is true)
/// + pos[1 + n]. `position` is the resampled table (1 + P, D); nil adds nothing (DINOv3).
public func assembleTokensForward(tokens: UnsafeMutablePointer<Float>, patchOut: UnsafePointer<Float>,
                                  masks: UnsafePointer<Bool>?, clsToken: UnsafePointer<Float>,
                                  registerTokens: UnsafePointer<Float>?, maskToken: UnsafePointer<Float>,
                                  position: UnsafePointer<Float>?, batch: Int, patches: Int, registers: Int, dim d: Int,
                                  parallelism: Parallelism) {
    let t = 1 + registers + patches
    parallelFor(batch, pieces(batch, work: batch * t * d, parallelism)) { range in
        for b in range {
            let item = tokens + b * t * d
            if let registerTokens { (item + d).update(from: registerTokens, count: registers * d) }
            guard let position else {
                item.update(from: clsToken, count: d)
                for n in 0..<patches {
                    let src = masks?[b * patches + n] == true ? maskToken : patchOut + (b * patches + n) * d
                    (item + (1 + registers + n) * d).update(from: src, count: d)
                }
                continue
            }
            for i in 0..<d { item[i] = clsToken[i] + position[i] }
            for n in 0..<patches {
                let src = masks?[b * patches + n] == true ? maskToken : patchOut + (b * patches + n) * d
                let pos = position + (1 + n) * d, dst = item + (1 + registers + n) * d
                for i in 0..<d { dst[i] = src[i] + pos[i] }
            }
        }
    }
}

/// Backward of `assembleTokensForward`: `dpatchOut` (batch·P, D) and `dposition` (1 + P, D) are
/// overwritten (masked patches get zero: the mask token replaced them; nil `dposition`: no
/// table); `dcls`, `dregisters`, `dmask` accumulate sums over the batch.
public func assembleTokensBackward(dpatchOut: UnsafeMutablePointer<Float>, dposition: UnsafeMutablePointer<Float>?,
                                   dcls: UnsafeMutablePointer<Float>, dregisters: UnsafeMutablePointer<Float>?,
                                   dmask: UnsafeMutablePointer<Float>, dtokens: UnsafePointer<Float>,
                                   masks: UnsafePointer<Bool>?, batch: Int, patches: Int, registers: Int, dim d: Int,
                                   parallelism: Parallelism) {
    let t = 1 + registers + patches
    dposition?.update(repeating: 0, count: (1 + patches) * d)
    // Column blocks: each thread owns its features of every sum.
    parallelFor(d, pieces(d, work: batch * t * d, minimum: 8, parallelism)) { cr in
        for b in 0..<batch {
            let item = dtokens + b * t * d
            for i in cr {
                dcls[i] += item[i]
                dposition?[i] += item[i]
            }
            if let dregisters {
                for r in 0..<registers { for i in cr { dregisters[r * d + i] += item[(1 + r) * d + i] } }
            }
            for n in 0..<patches {
                let g = item + (1 + registers + n) * d, dp = dposition.map { $0 + (1 + n) * d }
                let dst = dpatchOut + (b * patches + n) * d
                let masked = masks?[b * patches + n] == true
                for i in cr {
                    dp?[i] += g[i]
                    if masked {
                        dmask[i] += g[i]
                        dst[i] = 0
                    } else {
                        dst[i] = g[i]
                    }
                }
            }
        }
    }
}
