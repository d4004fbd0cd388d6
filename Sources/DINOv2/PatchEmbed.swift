import Kernels

extension Model {
    /// `prepare_tokens_with_masks` (spec §1.4–1.5) into `x`, (B, 1 + R + h·w, D):
    /// patch embedding as one GEMM over unfolded patches, mask-token substitution, cls token,
    /// position embedding (interpolated to the grid), then the registers inserted after cls.
    /// DINOv3 (dinov3-spec.md "Tokens") has no table: [cls, storage tokens, patches] as they are
    /// (its `cls_token + 0 · mask_token` adds zero), positions enter through RoPE in attention.
    func embedTokens(into x: UnsafeMutablePointer<Float>, pixels: UnsafePointer<Float>, masks: [Bool]?,
                     geometry g: InputGeometry, workspace ws: Workspace) throws {
        let c = config, d = c.embedDim, p = c.patchSize, r = c.registerTokens
        let patchesPerImage = g.patchRows * g.patchCols
        let unfoldWidth = c.inChannels * p * p
        let patches = ws.buffer(.patches, g.batch * patchesPerImage * unfoldWidth)
        let patchOut = ws.buffer(.patchOut, g.batch * patchesPerImage * d)
        ws.profile.measure("patch unfold", threads: parallelism.threads) {
            patchUnfoldForward(out: patches.pointer, inp: pixels, batch: g.batch, channels: c.inChannels,
                               height: g.height, width: g.width, patch: p, parallelism: parallelism)
        }
        ws.profile.measure("patch embed", flops: 2 * Double(g.batch * patchesPerImage * unfoldWidth * d),
                           threads: parallelism.threads) {
            linearForward(out: patchOut.pointer, inp: patches.pointer, weight: parameters.patch,
                          bias: parameters.patchBias.pointer, rows: g.batch * patchesPerImage, parallelism: parallelism)
        }

        let start = monotonicSeconds()
        defer {
            ws.profile?.record("tokens (cls, registers, position)",
                               threadSeconds: (monotonicSeconds() - start) * Double(parallelism.threads))
        }
        let pe = try positionEmbedding(geometry: g, workspace: ws)
        let cls = parameters.clsToken.pointer
        let mask = parameters.maskToken?.pointer
        for b in 0..<g.batch {
            let item = x + b * g.tokens * d
            if let pos = pe?.pointer {
                for i in 0..<d { item[i] = cls[i] + pos[i] }
            } else {
                item.update(from: cls, count: d)
            }
            if let regs = parameters.registerTokens?.pointer {
                (item + d).update(from: regs, count: r * d)
            }
            for n in 0..<patchesPerImage {
                let dst = item + (1 + r + n) * d
                // Masked positions take the mask token but still get their position embedding.
                let src: UnsafePointer<Float>
                if let masks, masks[b * patchesPerImage + n], let mask {
                    src = UnsafePointer(mask)
                } else {
                    src = UnsafePointer(patchOut.pointer + (b * patchesPerImage + n) * d)
                }
                if let pos = pe?.pointer {
                    let pr = pos + (1 + n) * d
                    for i in 0..<d { dst[i] = src[i] + pr[i] }
                } else {
                    dst.update(from: src, count: d)
                }
            }
        }
    }

    /// The position table for this input's grid, from the workspace's cache when it has it; nil
    /// for DINOv3, which has none.
    func positionEmbedding(geometry g: InputGeometry, workspace ws: Workspace) throws -> FloatBuffer? {
        guard let posEmbed = parameters.posEmbed else { return nil }
        let c = config
        let key = Workspace.PositionCacheKey(patchRows: g.patchRows, patchCols: g.patchCols,
                                             square: g.height == g.width, interpolation: c.interpolation)
        if let cached = ws.positionCache, cached.source === posEmbed, cached.key == key {
            return cached.table
        }
        let table = FloatBuffer(count: (1 + g.patches) * c.embedDim)
        try interpolatePositionEmbedding(out: table.pointer, table: posEmbed.pointer, grid: c.positionGrid,
                                         dim: c.embedDim, patchRows: g.patchRows, patchCols: g.patchCols,
                                         imageHeight: g.height, imageWidth: g.width,
                                         interpolation: c.interpolation, workspace: ws)
        ws.positionCache = (posEmbed, key, table)
        return table
    }
}
