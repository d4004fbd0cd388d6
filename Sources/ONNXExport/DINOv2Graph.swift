import DINOv2
import Formats
import TensorStore

/// Builds the DINOv2 graph (see `DINOv2ONNXExporter`) over hub-named weights. Node scopes
/// follow the module tree (`/blocks.3/attn`), so a graph viewer shows the model's structure.
final class GraphExporter {
    let config: Config
    let options: ExportOptions
    let b = ONNXGraphBuilder(name: "dinov2")
    /// Source tensors that are not backbone weights (a head, extra buffers): not exported.
    private(set) var ignored: [String] = []
    private var weights: [String: Tensor] = [:]
    private var asFloat: [String: String] = [:]

    init(hub: TensorStore, config: Config, options: ExportOptions) throws {
        self.config = config
        self.options = options
        try Self.checkShapes(hub, config)
        // Initializers in hub order, under hub names: importing the file gives back these bytes.
        for (name, t) in hub.tensors {
            guard Self.isBackbone(name, depth: config.depth) else { ignored.append(name); continue }
            let stored = t.dtype.isFloatingPoint && t.dtype != options.dtype ? try t.converted(to: options.dtype) : t.contiguous()
            weights[name] = stored
            b.addInitializer(name, stored)
        }
    }

    static func isBackbone(_ name: String, depth: Int) -> Bool {
        let top: Set<String> = [HubNames.clsToken, HubNames.posEmbed, HubNames.registerTokens, HubNames.maskToken,
                                HubNames.patchWeight, HubNames.patchBias, HubNames.normWeight, HubNames.normBias]
        if top.contains(name) { return true }
        let parts = name.split(separator: ".")
        return parts.count >= 3 && parts[0] == "blocks" && Int(parts[1]).map { $0 >= 0 && $0 < depth } == true
    }

    /// Every weight the graph reads, with its shape (Config.detect checked only a few).
    static func checkShapes(_ hub: TensorStore, _ c: Config) throws {
        let d = c.embedDim, f = c.ffnHidden, m = c.positionGrid
        var expected: [(String, [Int])] = [
            (HubNames.clsToken, [1, 1, d]), (HubNames.posEmbed, [1, 1 + m * m, d]),
            (HubNames.patchWeight, [d, c.inChannels, c.patchSize, c.patchSize]), (HubNames.patchBias, [d]),
            (HubNames.normWeight, [d]), (HubNames.normBias, [d]),
        ]
        if c.registerTokens > 0 { expected.append((HubNames.registerTokens, [1, c.registerTokens, d])) }
        for i in 0..<c.depth {
            var block: [(String, [Int])] = [
                ("norm1.weight", [d]), ("norm1.bias", [d]), ("attn.qkv.weight", [3 * d, d]), ("attn.qkv.bias", [3 * d]),
                ("attn.proj.weight", [d, d]), ("attn.proj.bias", [d]), ("norm2.weight", [d]), ("norm2.bias", [d]),
            ]
            if c.layerScale { block += [("ls1.gamma", [d]), ("ls2.gamma", [d])] }
            switch c.ffn {
            case .mlp: block += [("mlp.fc1.weight", [f, d]), ("mlp.fc1.bias", [f]), ("mlp.fc2.weight", [d, f]), ("mlp.fc2.bias", [d])]
            case .swiglu: block += [("mlp.w12.weight", [2 * f, d]), ("mlp.w12.bias", [2 * f]), ("mlp.w3.weight", [d, f]), ("mlp.w3.bias", [d])]
            }
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

        // prepare_tokens_with_masks (no masks): patches + position grid, cls + its position row,
        // registers (no position embedding) between them.
        let s = "/embeddings"
        let conv = b.add("Conv", ["pixel_values", try f32(HubNames.patchWeight), try f32(HubNames.patchBias)], scope: s + "/patch_embed",
                         [.ints("kernel_shape", [p, p]), .ints("strides", [p, p])])
        let flat = b.add("Reshape", [conv, try b.int64s([0, d, -1])], scope: s + "/patch_embed")
        let patches = b.add("Transpose", [flat], scope: s + "/patch_embed", [.ints("perm", [0, 2, 1])])
        let pos = try f32(HubNames.posEmbed)
        let end = try b.int64s([Int.max]), axis1 = try b.int64s([1])
        let posCls = b.add("Slice", [pos, try b.int64s([0]), axis1, axis1], scope: s + "/pos_embed")
        let posGrid = b.add("Slice", [pos, axis1, end, axis1], scope: s + "/pos_embed")
        let grid = try positionGrid(table: posGrid)
        let patchTokens = b.add("Add", [patches, grid], scope: s)
        let cls = b.add("Add", [try f32(HubNames.clsToken), posCls], scope: s)
        let n = b.add("Shape", ["pixel_values"], scope: s, [.int("start", 0), .int("end", 1)])
        func expanded(_ v: String, rows: Int) throws -> String {
            let shape = b.add("Concat", [n, try b.int64s([rows, d])], scope: s, [.int("axis", 0)])
            return b.add("Expand", [v, shape], scope: s)
        }
        var tokens = [try expanded(cls, rows: 1)]
        if r > 0 { tokens.append(try expanded(try f32(HubNames.registerTokens), rows: r)) }
        tokens.append(patchTokens)
        var x = b.add("Concat", tokens, scope: s, [.int("axis", 1)])

        for i in 0..<c.depth { x = try block(i, x) }
        let normed = try layerNorm(x, HubNames.normWeight, HubNames.normBias, scope: "/norm")

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

    func layerNorm(_ x: String, _ weight: String, _ bias: String, scope: String) throws -> String {
        b.add("LayerNormalization", [x, try f32(weight), try f32(bias)], scope: scope,
              [.int("axis", -1), .float("epsilon", config.layerNormEps)])
    }

    /// y = x Wᵀ + b with W in PyTorch's (out, in) layout.
    func linear(_ x: String, _ module: String, scope: String) throws -> String {
        let wT = b.add("Transpose", [try f32(module + ".weight")], scope: scope, [.ints("perm", [1, 0])])
        let y = b.add("MatMul", [x, wT], scope: scope)
        return b.add("Add", [y, try f32(module + ".bias")], scope: scope)
    }

    /// x + ls1(attn(norm1(x))), then + ls2(ffn(norm2(x))).
    func block(_ i: Int, _ x: String) throws -> String {
        let c = config, d = c.embedDim, heads = c.numHeads, hd = c.headDim
        let name = { (suffix: String) in HubNames.block(i, suffix) }
        let scope = "/blocks.\(i)"
        let sa = scope + "/attn"

        let n1 = try layerNorm(x, name("norm1.weight"), name("norm1.bias"), scope: scope + "/norm1")
        let qkv = try linear(n1, name("attn.qkv"), scope: sa + "/qkv")
        // (N, T, 3D) -> (N, T, 3, heads, hd) -> (3, N, heads, T, hd): q, k, v as the official reshape.
        let split = b.add("Reshape", [qkv, try b.int64s([0, 0, 3, heads, hd])], scope: sa)
        let perm = b.add("Transpose", [split], scope: sa, [.ints("perm", [2, 0, 3, 1, 4])])
        let q = b.add("Gather", [perm, try b.int64(0)], scope: sa, [.int("axis", 0)])
        let k = b.add("Gather", [perm, try b.int64(1)], scope: sa, [.int("axis", 0)])
        let v = b.add("Gather", [perm, try b.int64(2)], scope: sa, [.int("axis", 0)])
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
            let u = try linear(n2, name("mlp.w12"), scope: scope + "/mlp/w12")
            let halves = b.addMulti("Split", [u, try b.int64s([c.ffnHidden, c.ffnHidden])], outputs: 2, scope: scope + "/mlp",
                                    [.int("axis", -1)])
            let silu = b.add("Mul", [halves[0], b.add("Sigmoid", [halves[0]], scope: scope + "/mlp")], scope: scope + "/mlp")
            let gated = b.add("Mul", [silu, halves[1]], scope: scope + "/mlp")
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
