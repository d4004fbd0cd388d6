import DINOv2
import Formats
import TensorStore

/// The (h·w, D_head) sin and cos every block's RoPE reads: constants in a fixed-size export,
/// computed from the input's size in a dynamic one.
struct RopeTables {
    let sin: String
    let cos: String
}

/// The DINOv3 pieces of the graph (dinov3-spec.md): token assembly without a position table,
/// the RoPE tables, the rotation of the patch rows of q and k, and the untied final norm. The
/// blocks themselves are the shared ones in DINOv2Graph.swift.
extension GraphExporter {
    /// DINOv3 `prepare_tokens_with_masks` (no masks): [cls, storage tokens, patches] as they are;
    /// positions enter through RoPE in every attention. (`cls_token + 0 · mask_token` adds zero.)
    func dinov3Tokens(patches: String) throws -> String {
        let r = config.registerTokens
        var tokens = [try batchExpanded(try f32(HubNames.clsToken), rows: 1)]
        if r > 0 { tokens.append(try batchExpanded(try f32(HubNames.storageTokens), rows: r)) }
        tokens.append(patches)
        return b.add("Concat", tokens, scope: "/embeddings", [.int("axis", 1)])
    }

    /// A fixed size bakes DinoKit's own tables (`RotaryPositions`, the forward's numbers); a
    /// dynamic size computes them in the graph from the same periods (`ropeTablesDynamic`).
    func ropeTables() throws -> RopeTables {
        let c = config
        let periods = try RotaryPositions.periods(hubStore: weights, config: c)
        guard case let .fixed(height, width) = options.imageSize else { return try ropeTablesDynamic(periods: periods) }
        let h = height / c.patchSize, w = width / c.patchSize
        let tables = RotaryPositions.tables(periods: periods, patchRows: h, patchCols: w)
        let prefix = ONNXModelReader.derivedPrefix + "rope_embed."
        b.addInitializer(prefix + "sin_\(h)x\(w)", try Tensor(shape: [h * w, c.headDim], floats: tables.sin))
        b.addInitializer(prefix + "cos_\(h)x\(w)", try Tensor(shape: [h * w, c.headDim], floats: tables.cos))
        return RopeTables(sin: prefix + "sin_\(h)x\(w)", cos: prefix + "cos_\(h)x\(w)")
    }

    /// The official `RopePositionEmbedding` (eval, "separate" coords, float32) op for op, for the
    /// input's h × w patch grid (H / p, W / p from its shape):
    ///   coords = 2 · (arange(0.5, n) / n) − 1 per axis; angles = 2π · coords / periods, (n, P);
    ///   rows then columns per token, (h·w, 2P); sin and cos of that, tiled twice to D_head.
    /// The periods are a float32 constant (the stored buffer, or the base's, as the forward uses).
    func ropeTablesDynamic(periods: [Float]) throws -> RopeTables {
        let c = config, s = "/rope_embed", p = periods.count
        let periodsName = ONNXModelReader.derivedPrefix + "rope_embed.periods"
        b.addInitializer(periodsName, try Tensor(shape: [p], floats: periods))
        let sizePixels = b.add("Shape", ["pixel_values"], scope: s, [.int("start", 2), .int("end", 4)])
        let hw = b.add("Div", [sizePixels, try b.int64s([c.patchSize])], scope: s)
        // (n, P) angles of the n patch centres along axis `index` (0 rows, 1 columns).
        func angles(_ index: Int) throws -> String {
            let count = b.add("Gather", [hw, try b.int64(index)], scope: s, [.int("axis", 0)])
            let n = b.add("Cast", [count], scope: s, [.int("to", Int(ONNXDataType.float))])
            let centres = b.add("Range", [try b.floats([0.5], scalar: true), n, try b.floats([1], scalar: true)], scope: s)
            let unit = b.add("Div", [centres, n], scope: s)
            let coords = b.add("Sub", [b.add("Mul", [unit, try b.floats([2], scalar: true)], scope: s),
                                       try b.floats([1], scalar: true)], scope: s)
            let column = b.add("Unsqueeze", [coords, try b.int64s([1])], scope: s)
            let turns = b.add("Mul", [column, try b.floats([2 * Double.pi], scalar: true)], scope: s)
            return b.add("Div", [turns, periodsName], scope: s)
        }
        let rows = b.add("Unsqueeze", [try angles(0), try b.int64s([1])], scope: s)     // (h, 1, P)
        let cols = b.add("Unsqueeze", [try angles(1), try b.int64s([0])], scope: s)     // (1, w, P)
        let grid = b.add("Concat", [hw, try b.int64s([p])], scope: s, [.int("axis", 0)])  // (h, w, P)
        let pairs = b.add("Concat", [b.add("Expand", [rows, grid], scope: s), b.add("Expand", [cols, grid], scope: s)],
                          scope: s, [.int("axis", -1)])
        let flat = b.add("Reshape", [pairs, try b.int64s([-1, 2 * p])], scope: s)
        let sin = b.add("Sin", [flat], scope: s), cos = b.add("Cos", [flat], scope: s)
        return RopeTables(sin: b.add("Concat", [sin, sin], scope: s, [.int("axis", -1)]),
                          cos: b.add("Concat", [cos, cos], scope: s, [.int("axis", -1)]))
    }

    /// x · cos + rotate_half(x) · sin on the patch rows of q or k, (N, heads, T, D_head), with
    /// rotate_half(x) = (−x₂, x₁) of the head's halves; the cls and storage rows pass unrotated.
    func rotated(_ x: String, _ rope: RopeTables, scope: String) throws -> String {
        let prefix = 1 + config.registerTokens, half = config.headDim / 2
        let axis2 = try b.int64s([2])
        let head = b.add("Slice", [x, try b.int64s([0]), try b.int64s([prefix]), axis2], scope: scope)
        let patches = b.add("Slice", [x, try b.int64s([prefix]), try b.int64s([Int.max]), axis2], scope: scope)
        let halves = b.addMulti("Split", [patches, try b.int64s([half, half])], outputs: 2, scope: scope, [.int("axis", -1)])
        let turned = b.add("Concat", [b.add("Neg", [halves[1]], scope: scope), halves[0]], scope: scope, [.int("axis", -1)])
        let y = b.add("Add", [b.add("Mul", [patches, rope.cos], scope: scope), b.add("Mul", [turned, rope.sin], scope: scope)],
                      scope: scope)
        return b.add("Concat", [head, y], scope: scope, [.int("axis", 2)])
    }

    /// `untie_cls_and_patch_norms`: `cls_norm` on the cls and storage rows, `norm` on the patches.
    func untiedNorm(_ x: String) throws -> String {
        let prefix = 1 + config.registerTokens, axis1 = try b.int64s([1])
        let head = b.add("Slice", [x, try b.int64s([0]), try b.int64s([prefix]), axis1], scope: "/cls_norm")
        let patches = b.add("Slice", [x, try b.int64s([prefix]), try b.int64s([Int.max]), axis1], scope: "/norm")
        return b.add("Concat", [try layerNorm(head, HubNames.classNormWeight, HubNames.classNormBias, scope: "/cls_norm"),
                                try layerNorm(patches, HubNames.normWeight, HubNames.normBias, scope: "/norm")],
                     scope: "/norm", [.int("axis", 1)])
    }
}
