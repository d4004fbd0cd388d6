import DINOv2
import Formats
import TensorStore

/// Builds the DINOv2 or DINOv3 graph (see `DINOv2ONNXExporter`) over hub-named weights: the
/// patch embedding, blocks and norms are shared; each family's token assembly (and DINOv3's
/// RoPE, `DINOv3Graph.swift`) is its own. Node scopes follow the module tree
/// (`/blocks.3/attn`), so a graph viewer shows the model's structure.
final class GraphExporter {
    let config: Config
    let options: ExportOptions
    let b: ONNXGraphBuilder
    /// Source tensors that are not backbone weights (a head, extra buffers): not exported.
    private(set) var ignored: [String] = []
    /// The exported hub tensors, as stored (in `options.dtype`): what derived constants (DINOv3's
    /// folded bias and RoPE tables) are computed from, so they agree with the file's weights.
    private(set) var weights = TensorStore()
    private var asFloat: [String: String] = [:]
    /// An int8 export's quantized Linear weights by hub name (`Int8Graph.swift`).
    var int8Weights: [String: Int8Weight] = [:]
    /// Activations already quantized, by value name: DINOv3's w1 and w2 share norm2's output.
    var quantizedActivations: [String: QuantizedRows] = [:]
    /// The input's batch size as a 1-D int64 (made at first use).
    private lazy var batchSize = b.add("Shape", ["pixel_values"], scope: "/embeddings", [.int("start", 0), .int("end", 1)])

    init(hub: TensorStore, config: Config, options: ExportOptions) throws {
        self.config = config
        self.options = options
        b = ONNXGraphBuilder(name: config.family.rawValue)
        try Self.checkShapes(hub, config)
        // Initializers in hub order, under hub names: importing the file gives back these bytes
        // (an int8 export's quantized Linear weights: the float32 weights its graph computes with).
        let floatDType = options.dtype == .i8 ? DType.f32 : options.dtype
        for (name, t) in hub.tensors {
            guard Self.isBackbone(name, depth: config.depth) else { ignored.append(name); continue }
            if options.dtype == .i8, Self.isInt8Linear(name) {
                try addInt8Weight(name, t)
                continue
            }
            let stored = t.dtype.isFloatingPoint && t.dtype != floatDType ? try t.converted(to: floatDType) : t.contiguous()
            try weights.insert(stored, named: name)
            b.addInitializer(name, stored)
        }
    }

    static func isBackbone(_ name: String, depth: Int) -> Bool {
        let top: Set<String> = [HubNames.clsToken, HubNames.posEmbed, HubNames.registerTokens, HubNames.maskToken,
                                HubNames.patchWeight, HubNames.patchBias, HubNames.normWeight, HubNames.normBias,
                                HubNames.storageTokens, HubNames.ropePeriods, HubNames.classNormWeight, HubNames.classNormBias]
        if top.contains(name) { return true }
        let parts = name.split(separator: ".")
        return parts.count >= 3 && parts[0] == "blocks" && Int(parts[1]).map { $0 >= 0 && $0 < depth } == true
    }

    /// Every weight the graph reads, with its shape (Config.detect checked only a few).
    static func checkShapes(_ hub: TensorStore, _ c: Config) throws {
        let d = c.embedDim, f = c.ffnHidden, m = c.positionGrid, r = c.registerTokens, a = c.architecture
        let v3 = c.family == .dinov3
        var expected: [(String, [Int])] = [
            (HubNames.clsToken, [1, 1, d]),
            (HubNames.patchWeight, [d, c.inChannels, c.patchSize, c.patchSize]), (HubNames.patchBias, [d]),
            (HubNames.normWeight, [d]), (HubNames.normBias, [d]),
        ]
        if v3 {
            if r > 0 { expected.append((HubNames.storageTokens, [1, r, d])) }
            if a.untiedClassNorm { expected += [(HubNames.classNormWeight, [d]), (HubNames.classNormBias, [d])] }
            // Optional: without it the periods come from the RoPE base.
            if hub[HubNames.ropePeriods] != nil { expected.append((HubNames.ropePeriods, [c.headDim / 4])) }
        } else {
            expected.append((HubNames.posEmbed, [1, 1 + m * m, d]))
            if r > 0 { expected.append((HubNames.registerTokens, [1, r, d])) }
        }
        for i in 0..<c.depth {
            var block: [(String, [Int])] = [
                ("norm1.weight", [d]), ("norm1.bias", [d]), ("attn.qkv.weight", [3 * d, d]),
                ("attn.proj.weight", [d, d]), ("attn.proj.bias", [d]), ("norm2.weight", [d]), ("norm2.bias", [d]),
            ]
            if a.qkvBias { block.append(("attn.qkv.bias", [3 * d])) }
            if a.maskedKeyBias { block.append(("attn.qkv.bias_mask", [3 * d])) }
            if c.layerScale { block += [("ls1.gamma", [d]), ("ls2.gamma", [d])] }
            switch (c.ffn, v3) {
            case (.mlp, _): block += [("mlp.fc1.weight", [f, d]), ("mlp.fc1.bias", [f]), ("mlp.fc2.weight", [d, f]), ("mlp.fc2.bias", [d])]
            case (.swiglu, false): block += [("mlp.w12.weight", [2 * f, d]), ("mlp.w12.bias", [2 * f])]
            case (.swiglu, true): block += [("mlp.w1.weight", [f, d]), ("mlp.w1.bias", [f]), ("mlp.w2.weight", [f, d]), ("mlp.w2.bias", [f])]
            }
            if c.ffn == .swiglu { block += [("mlp.w3.weight", [d, f]), ("mlp.w3.bias", [d])] }
            expected += block.map { (HubNames.block(i, $0.0), $0.1) }
        }
        for (name, dims) in expected {
            guard let t = hub[name] else { throw ONNXExportError.unsupportedModel("missing weight '\(name)' (expected shape \(dims))") }
            guard t.shape.dims == dims else {
                throw ONNXExportError.unsupportedModel("weight '\(name)' has shape \(t.shape), expected \(Shape(dims))")
            }
            guard t.dtype.isFloatingPoint else { throw ONNXExportError.unsupportedModel("weight '\(name)' is \(t.dtype), not floating point") }
        }
    }

    /// A weight as float32: the initializer itself, or a Cast of it when stored as F16.
    func f32(_ name: String) throws -> String {
        guard let t = weights[name] else { throw ONNXExportError.unsupportedModel("missing weight '\(name)'") }
        if t.dtype == .f32 { return name }
        if let v = asFloat[name] { return v }
        let v = b.add("Cast", [name], scope: "/weights/" + name, [.int("to", Int(ONNXDataType.float))])
        asFloat[name] = v
        return v
    }

    // MARK: - The graph

    func build() throws -> ONNXGraph {
        let c = config, d = c.embedDim, p = c.patchSize, r = c.registerTokens
        let batch = ONNXDimension.param("batch")
        let patchesDim: ONNXDimension
        switch options.imageSize {
        case let .fixed(h, w):
            b.addInput(ONNXValueInfo(name: "pixel_values", dims: [batch, .value(c.inChannels), .value(h), .value(w)]))
            patchesDim = .value((h / p) * (w / p))
        case .dynamic:
            b.addInput(ONNXValueInfo(name: "pixel_values", dims: [batch, .value(c.inChannels), .param("height"), .param("width")]))
            patchesDim = .param("patches")
        }

        let s = "/embeddings"
        let patches: String
        if int8Weights[HubNames.patchWeight] != nil {
            patches = try int8PatchEmbedding()
        } else {
            let conv = b.add("Conv", ["pixel_values", try f32(HubNames.patchWeight), try f32(HubNames.patchBias)], scope: s + "/patch_embed",
                             [.ints("kernel_shape", [p, p]), .ints("strides", [p, p])])
            let flat = b.add("Reshape", [conv, try b.int64s([0, d, -1])], scope: s + "/patch_embed")
            patches = b.add("Transpose", [flat], scope: s + "/patch_embed", [.ints("perm", [0, 2, 1])])
        }
        var x: String
        var rope: RopeTables?
        switch c.family {
        case .dinov2: x = try dinov2Tokens(patches: patches)
        case .dinov3: (x, rope) = (try dinov3Tokens(patches: patches), try ropeTables())
        }

        for i in 0..<c.depth { x = try block(i, x, rope: rope) }
        let normed = c.architecture.untiedClassNorm ? try untiedNorm(x)
                                                    : try layerNorm(x, HubNames.normWeight, HubNames.normBias, scope: "/norm")

        let end = try b.int64s([Int.max]), axis1 = try b.int64s([1])

        let requested = options.outputs ?? ([.cls, .patch] + (r > 0 ? [.reg] : []))
        let tokensDim: ONNXDimension
        if case let .value(hw) = patchesDim { tokensDim = .value(1 + r + hw) } else { tokensDim = .param("tokens") }
        for o in ExportOptions.Output.allCases where requested.contains(o) {
            let scope = "/outputs"
            switch o {
            case .cls:
                b.add("Gather", [normed, try b.int64(0)], scope: scope, output: o.outputName, [.int("axis", 1)])
                b.addOutput(ONNXValueInfo(name: o.outputName, dims: [batch, .value(d)]))
            case .patch:
                b.add("Slice", [normed, try b.int64s([1 + r]), end, axis1], scope: scope, output: o.outputName)
                b.addOutput(ONNXValueInfo(name: o.outputName, dims: [batch, patchesDim, .value(d)]))
            case .reg:
                b.add("Slice", [normed, axis1, try b.int64s([1 + r]), axis1], scope: scope, output: o.outputName)
                b.addOutput(ONNXValueInfo(name: o.outputName, dims: [batch, .value(r), .value(d)]))
            case .prenorm:
                b.add("Identity", [x], scope: scope, output: o.outputName)
                b.addOutput(ONNXValueInfo(name: o.outputName, dims: [batch, tokensDim, .value(d)]))
            }
        }
        return b.graph
    }

    /// DINOv2 `prepare_tokens_with_masks` (no masks): patches + position grid, cls + its position
    /// row, registers (no position embedding) between them.
    func dinov2Tokens(patches: String) throws -> String {
        let s = "/embeddings", r = config.registerTokens
        let pos = try f32(HubNames.posEmbed)
        let end = try b.int64s([Int.max]), axis1 = try b.int64s([1])
        let posCls = b.add("Slice", [pos, try b.int64s([0]), axis1, axis1], scope: s + "/pos_embed")
        let posGrid = b.add("Slice", [pos, axis1, end, axis1], scope: s + "/pos_embed")
        let grid = try positionGrid(table: posGrid)
        let patchTokens = b.add("Add", [patches, grid], scope: s)
        let cls = b.add("Add", [try f32(HubNames.clsToken), posCls], scope: s)
        var tokens = [try batchExpanded(cls, rows: 1)]
        if r > 0 { tokens.append(try batchExpanded(try f32(HubNames.registerTokens), rows: r)) }
        tokens.append(patchTokens)
        return b.add("Concat", tokens, scope: s, [.int("axis", 1)])
    }

    /// A (1, rows, D) token tensor repeated for every image of the batch.
    func batchExpanded(_ v: String, rows: Int) throws -> String {
        let s = "/embeddings"
        let shape = b.add("Concat", [batchSize, try b.int64s([rows, config.embedDim])], scope: s, [.int("axis", 0)])
        return b.add("Expand", [v, shape], scope: s)
    }

    func layerNorm(_ x: String, _ weight: String, _ bias: String, scope: String) throws -> String {
        b.add("LayerNormalization", [x, try f32(weight), try f32(bias)], scope: scope,
              [.int("axis", -1), .float("epsilon", config.layerNormEps)])
    }

    /// y = x Wᵀ + b with W in PyTorch's (out, in) layout.
    func linear(_ x: String, _ module: String, scope: String) throws -> String {
        try linear(x, weight: module + ".weight", bias: try f32(module + ".bias"), scope: scope)
    }

    /// y = x Wᵀ (+ bias when there is one); int8 weights go through `int8Linear`.
    func linear(_ x: String, weight: String, bias: String?, scope: String) throws -> String {
        if let w = int8Weights[weight] { return try int8Linear(x, w, bias: bias, scope: scope) }
        let wT = b.add("Transpose", [try f32(weight)], scope: scope, [.ints("perm", [1, 0])])
        let y = b.add("MatMul", [x, wT], scope: scope)
        return bias.map { b.add("Add", [y, $0], scope: scope) } ?? y
    }

    /// Block `i`'s qkv bias as the attention adds it: the stored bias, or for DINOv3's masked key
    /// bias the product bias · bias_mask folded into a constant by `Parameters.attentionBias` (the
    /// forward's rule; the hub tensors stay in the file unread, so converting back is lossless),
    /// or nil when the model has none (7B).
    func qkvBias(_ i: Int) throws -> String? {
        let a = config.architecture, name = HubNames.block(i, "attn.qkv.bias")
        guard a.qkvBias else { return nil }
        guard a.maskedKeyBias else { return try f32(name) }
        let folded = ONNXModelReader.derivedPrefix + HubNames.block(i, "attn.qkv.masked_bias")
        b.addInitializer(folded, try Tensor(shape: [3 * config.embedDim],
                                            floats: Parameters.attentionBias(hubStore: weights, config: config, block: i)))
        return folded
    }

    /// x + ls1(attn(norm1(x))), then + ls2(ffn(norm2(x))); DINOv3 (`rope`) rotates the patch
    /// rows of q and k first.
    func block(_ i: Int, _ x: String, rope: RopeTables?) throws -> String {
        let c = config, d = c.embedDim, heads = c.numHeads, hd = c.headDim
        let name = { (suffix: String) in HubNames.block(i, suffix) }
        let scope = "/blocks.\(i)"
        let sa = scope + "/attn"

        let n1 = try layerNorm(x, name("norm1.weight"), name("norm1.bias"), scope: scope + "/norm1")
        let qkv = try linear(n1, weight: name("attn.qkv.weight"), bias: try qkvBias(i), scope: sa + "/qkv")
        // (N, T, 3D) -> (N, T, 3, heads, hd) -> (3, N, heads, T, hd): q, k, v as the official reshape.
        let split = b.add("Reshape", [qkv, try b.int64s([0, 0, 3, heads, hd])], scope: sa)
        let perm = b.add("Transpose", [split], scope: sa, [.ints("perm", [2, 0, 3, 1, 4])])
        var q = b.add("Gather", [perm, try b.int64(0)], scope: sa, [.int("axis", 0)])
        var k = b.add("Gather", [perm, try b.int64(1)], scope: sa, [.int("axis", 0)])
        let v = b.add("Gather", [perm, try b.int64(2)], scope: sa, [.int("axis", 0)])
        if let rope { (q, k) = (try rotated(q, rope, scope: sa + "/rope"), try rotated(k, rope, scope: sa + "/rope")) }
        let scaled = b.add("Mul", [q, try b.floats([1 / Double(hd).squareRoot()], scalar: true)], scope: sa)
        let kT = b.add("Transpose", [k], scope: sa, [.ints("perm", [0, 1, 3, 2])])
        let scores = b.add("MatMul", [scaled, kT], scope: sa)
        let probs = b.add("Softmax", [scores], scope: sa, [.int("axis", -1)])
        let context = b.add("MatMul", [probs, v], scope: sa)
        let merged = b.add("Reshape", [b.add("Transpose", [context], scope: sa, [.ints("perm", [0, 2, 1, 3])]),
                                       try b.int64s([0, 0, d])], scope: sa)
        var branch = try linear(merged, name("attn.proj"), scope: sa + "/proj")
        if c.layerScale { branch = b.add("Mul", [branch, try f32(name("ls1.gamma"))], scope: scope + "/ls1") }
        let x1 = b.add("Add", [x, branch], scope: scope)

        let n2 = try layerNorm(x1, name("norm2.weight"), name("norm2.bias"), scope: scope + "/norm2")
        var ffn: String
        switch c.ffn {
        case .mlp:
            let hidden = try linear(n2, name("mlp.fc1"), scope: scope + "/mlp/fc1")
            ffn = try linear(try gelu(hidden, scope: scope + "/mlp/act"), name("mlp.fc2"), scope: scope + "/mlp/fc2")
        case .swiglu:
            // silu(gate) · up: DINOv2 stores gate and up stacked in w12, DINOv3 as w1 and w2.
            let gate: String, up: String
            if c.family == .dinov3 {
                (gate, up) = (try linear(n2, name("mlp.w1"), scope: scope + "/mlp/w1"), try linear(n2, name("mlp.w2"), scope: scope + "/mlp/w2"))
            } else {
                let u = try linear(n2, name("mlp.w12"), scope: scope + "/mlp/w12")
                let halves = b.addMulti("Split", [u, try b.int64s([c.ffnHidden, c.ffnHidden])], outputs: 2, scope: scope + "/mlp",
                                        [.int("axis", -1)])
                (gate, up) = (halves[0], halves[1])
            }
            let silu = b.add("Mul", [gate, b.add("Sigmoid", [gate], scope: scope + "/mlp")], scope: scope + "/mlp")
            let gated = b.add("Mul", [silu, up], scope: scope + "/mlp")
            ffn = try linear(gated, name("mlp.w3"), scope: scope + "/mlp/w3")
        }
        if c.layerScale { ffn = b.add("Mul", [ffn, try f32(name("ls2.gamma"))], scope: scope + "/ls2") }
        return b.add("Add", [x1, ffn], scope: scope)
    }

    /// Exact (erf) GELU: the Gelu op from opset 20, else x · 0.5 · (1 + erf(x / √2)) in the
    /// pattern onnxruntime fuses back into one kernel.
    func gelu(_ x: String, scope: String) throws -> String {
        if options.opset >= 20 { return b.add("Gelu", [x], scope: scope) }
        let e = b.add("Erf", [b.add("Div", [x, try b.floats([Double(2).squareRoot()], scalar: true)], scope: scope)], scope: scope)
        let onePlus = b.add("Add", [e, try b.floats([1], scalar: true)], scope: scope)
        return b.add("Mul", [b.add("Mul", [x, onePlus], scope: scope), try b.floats([0.5], scalar: true)], scope: scope)
    }

    // MARK: - Position grid

    /// The (1, h·w, D) position rows for the patches. `table` is the stored grid (1, M², D).
    func positionGrid(table: String) throws -> String {
        let c = config, d = c.embedDim, m = c.positionGrid
        switch options.imageSize {
        case let .fixed(height, width):
            let h = height / c.patchSize, w = width / c.patchSize
            guard let pos = weights[HubNames.posEmbed] else { throw ONNXExportError.unsupportedModel("missing pos_embed") }
            guard let grid = try PositionTable.bakedGrid(table: pos.floats(), grid: m, dim: d, patchRows: h, patchCols: w,
                                                         imageHeight: height, imageWidth: width,
                                                         interpolation: c.interpolation) else { return table }
            let name = ONNXModelReader.derivedPrefix + "pos_embed.grid_\(h)x\(w)"
            b.addInitializer(name, try Tensor(shape: [1, h * w, d], floats: grid))
            return name
        case .dynamic:
            return try positionGridDynamic(table: table)
        }
    }

    /// The grid resampled in the graph for the input's h × w, as `interpolate_pos_encoding`:
    /// kept as stored when h = w = M (the official skip; an If node), else Resize bicubic with
    /// half-pixel centres. Offset models (no registers) pass scale factors (h + 0.1)/M: the
    /// output size floors to h and the kernel samples at M/(h + 0.1), as PyTorch's scale_factor
    /// branch does. Offset-0 models pass the sizes; antialiased ones (registers) use a = −0.5
    /// with taps outside the grid excluded and renormalised (PyTorch's `_upsample_bicubic2d_aa`),
    /// the others a = −0.75 with clamped taps (`upsample_bicubic2d`).
    func positionGridDynamic(table: String) throws -> String {
        let c = config, d = c.embedDim, m = c.positionGrid, interp = c.interpolation
        let s = "/embeddings/pos_embed"
        let sizePixels = b.add("Shape", ["pixel_values"], scope: s, [.int("start", 2), .int("end", 4)])
        let hw = b.add("Div", [sizePixels, try b.int64s([c.patchSize])], scope: s)
        let same = b.add("Equal", [hw, try b.int64s([m, m])], scope: s)
        let native = b.add("And", [b.add("Gather", [same, try b.int64(0)], scope: s, [.int("axis", 0)]),
                                   b.add("Gather", [same, try b.int64(1)], scope: s, [.int("axis", 0)])], scope: s)
        let gridInfo = { (name: String) in ONNXValueInfo(name: name, dims: [.value(1), .unknown, .value(d)]) }

        let keep = b.subgraph("keep_position_table")
        let kept = keep.add("Identity", [table], scope: s + "/keep")
        keep.addOutput(gridInfo(kept))

        let resample = b.subgraph("resample_position_table")
        let rs = s + "/resample"
        let square = resample.add("Reshape", [table, try b.int64s([1, m, m, d])], scope: rs)
        let planes = resample.add("Transpose", [square], scope: rs, [.ints("perm", [0, 3, 1, 2])])
        var attributes: [ONNXAttribute] = [
            .string("mode", "cubic"), .string("coordinate_transformation_mode", "half_pixel"),
            .float("cubic_coeff_a", interp.antialias ? -0.5 : -0.75), .int("exclude_outside", interp.antialias ? 1 : 0),
        ]
        if interp.antialias { attributes.append(.int("antialias", 1)) }
        let resized: String
        if interp.offset != 0 {
            // (h + offset) / M in double, as Python computes it, then float32 as Resize takes it.
            let hwD = resample.add("Cast", [hw], scope: rs, [.int("to", Int(ONNXDataType.double))])
            let factors = resample.add("Div", [resample.add("Add", [hwD, try b.floats([interp.offset], dtype: .f64, scalar: true)], scope: rs),
                                               try b.floats([Double(m)], dtype: .f64, scalar: true)], scope: rs)
            let factors32 = resample.add("Cast", [factors], scope: rs, [.int("to", Int(ONNXDataType.float))])
            let scales = resample.add("Concat", [try b.floats([1, 1]), factors32], scope: rs, [.int("axis", 0)])
            resized = resample.add("Resize", [planes, "", scales], scope: rs, attributes)
        } else {
            let sizes = resample.add("Concat", [try b.int64s([1, d]), hw], scope: rs, [.int("axis", 0)])
            resized = resample.add("Resize", [planes, "", "", sizes], scope: rs, attributes)
        }
        let back = resample.add("Transpose", [resized], scope: rs, [.ints("perm", [0, 2, 3, 1])])
        let rows = resample.add("Reshape", [back, try b.int64s([1, -1, d])], scope: rs)
        resample.addOutput(gridInfo(rows))

        return b.add("If", [native], scope: s, [ONNXAttribute("then_branch", .graph(keep.graph)),
                                                 ONNXAttribute("else_branch", .graph(resample.graph))])
    }
}
