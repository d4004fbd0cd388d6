import DINOv2
import Formats
import Kernels
import TensorStore

/// A quantized Linear weight in the graph: INT8 in the hub shape (out, …) and FLOAT scales (out).
struct Int8Weight {
    let q: String
    let scale: String
    let rank: Int
}

/// A GEMM input quantized per row: the values + 128 as UINT8 (read with zero point 128) and
/// their FLOAT scales (…, 1).
struct QuantizedRows {
    let q: String
    let scale: String
}

/// The int8 pieces of the graph (`--dtype int8`): DinoKit's `--precision int8` numerics
/// (`Int8Quantization`) in standard ops, so ONNX Runtime and the native forward agree closely.
///
///     s_a = ReduceMax(Abs(x), last axis) / 127 (1 where the row is zero)
///     q_a = Clip(Round(x / s_a), −127, 127)        Round: half to even
///     y   = (Cast(MatMulInteger(q_a + 128 as UINT8, q_wᵀ, a_zero_point 128), FLOAT) · s_a) · s_w + bias
///
/// The weights are quantized once here (per output channel, the same function the native path
/// uses); int32 accumulation makes the integer part exact. MatMulInteger subtracts the zero
/// point before multiplying, so the +128 offset changes no number: it is there because ONNX
/// Runtime's CPU kernels for a uint8 A are several times faster than its int8 × int8 one.
/// Attention, norms, GELU and residuals stay float32 as in the f32 graph. The patch embedding
/// becomes an unfold (Reshape, Transpose) and the same quantized linear: per-token quantization
/// needs the patch as a row, which Conv (ConvInteger has no per-row scale) cannot give.
extension GraphExporter {
    /// The Linear weights an int8 export quantizes: those DinoKit packs for its GEMMs.
    static let int8LinearModules: Set<String> = [
        "attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2", "mlp.w12", "mlp.w1", "mlp.w2", "mlp.w3",
    ]

    static func isInt8Linear(_ name: String) -> Bool {
        if name == HubNames.patchWeight { return true }
        let parts = name.split(separator: ".")
        guard parts.count == 5, parts[0] == "blocks", parts[4] == "weight" else { return false }
        return int8LinearModules.contains(parts[2...3].joined(separator: "."))
    }

    /// Quantizes `t` (shape-checked by `checkShapes`) per output channel: the INT8 tensor under
    /// `dinokit::int8/<name>`, its scales under `… .scale` (what `ONNXModelReader` reads back).
    func addInt8Weight(_ name: String, _ t: Tensor) throws {
        let rows = t.shape[0], cols = t.elementCount / Swift.max(rows, 1)
        let values = t.floats()
        guard values.allSatisfy(\.isFinite) else {
            throw ONNXExportError.unsupportedModel("weight '\(name)' has a value that is not finite: it cannot be quantized to int8")
        }
        let (q, scales) = Int8Quantization.perChannel(weight: values, out: rows, in: cols)
        let qName = ONNXModelReader.int8Prefix + name, scaleName = qName + ONNXModelReader.int8ScaleSuffix
        let qTensor = try q.withUnsafeBytes { try Tensor(dtype: .i8, shape: t.shape, bytes: $0) }
        b.addInitializer(qName, qTensor)
        b.addInitializer(scaleName, try Tensor(shape: [rows], floats: scales))
        int8Weights[name] = Int8Weight(q: qName, scale: scaleName, rank: t.shape.rank)
    }

    /// `x` (…, K) quantized per row (the last axis), once per value.
    func quantizedRows(_ x: String, scope: String) throws -> QuantizedRows {
        if let done = quantizedActivations[x] { return done }
        let s = scope + "/quantize"
        let magnitude = b.add("Abs", [x], scope: s)
        // ReduceMax takes its axes as an input from opset 18, as an attribute before.
        let maxAbs = options.opset >= 18
            ? b.add("ReduceMax", [magnitude, try b.int64s([-1])], scope: s, [.int("keepdims", 1)])
            : b.add("ReduceMax", [magnitude], scope: s, [.ints("axes", [-1]), .int("keepdims", 1)])
        let limit = Double(Int8Quantization.limit)
        // As the native rule: a scale that is 0 (an all-zero row, or one so small that /127
        // underflows) becomes 1.
        let divided = b.add("Div", [maxAbs, try b.floats([limit], scalar: true)], scope: s)
        let zero = b.add("Equal", [divided, try b.floats([0], scalar: true)], scope: s)
        let scale = b.add("Where", [zero, try b.floats([1], scalar: true), divided], scope: s)
        let rounded = b.add("Round", [b.add("Div", [x, scale], scope: s)], scope: s)
        let clipped = b.add("Clip", [rounded, try b.floats([-limit], scalar: true), try b.floats([limit], scalar: true)], scope: s)
        let shifted = b.add("Add", [clipped, try b.floats([128], scalar: true)], scope: s)
        let q = b.add("Cast", [shifted], scope: s, [.int("to", Int(ONNXDataType.uint8))])
        let done = QuantizedRows(q: q, scale: scale)
        quantizedActivations[x] = done
        return done
    }

    /// y = (float(q_a q_wᵀ) · s_a) · s_w (+ bias), the int32 product from MatMulInteger (whose
    /// zero point takes the 128 back off q_a).
    func int8Linear(_ x: String, _ w: Int8Weight, bias: String?, scope: String) throws -> String {
        let a = try quantizedRows(x, scope: scope)
        // The patch embedding's (D, C, p, p) weight as (D, C·p·p) rows; runtimes fold this at load.
        let matrix = w.rank == 2 ? w.q : b.add("Reshape", [w.q, try b.int64s([0, -1])], scope: scope)
        let wT = b.add("Transpose", [matrix], scope: scope, [.ints("perm", [1, 0])])
        let acc = b.add("MatMulInteger", [a.q, wT, try b.uint8(128)], scope: scope)
        let real = b.add("Cast", [acc], scope: scope, [.int("to", Int(ONNXDataType.float))])
        let y = b.add("Mul", [b.add("Mul", [real, a.scale], scope: scope), w.scale], scope: scope)
        return bias.map { b.add("Add", [y, $0], scope: scope) } ?? y
    }

    /// The patch embedding as DinoKit computes it: the image unfolded into (N, h·w, C·p·p) rows
    /// in PyTorch's weight order (channel, row, column), then the quantized linear.
    func int8PatchEmbedding() throws -> String {
        let c = config, p = c.patchSize, ch = c.inChannels, s = "/embeddings/patch_embed"
        let blocksShape: String
        switch options.imageSize {
        case let .fixed(height, width):
            blocksShape = try b.int64s([0, ch, height / p, p, width / p, p])
        case .dynamic:
            let sizePixels = b.add("Shape", ["pixel_values"], scope: s, [.int("start", 2), .int("end", 4)])
            let hw = b.add("Div", [sizePixels, try b.int64s([p])], scope: s)
            let h = b.add("Gather", [hw, try b.int64s([0])], scope: s, [.int("axis", 0)])
            let w = b.add("Gather", [hw, try b.int64s([1])], scope: s, [.int("axis", 0)])
            blocksShape = b.add("Concat", [try b.int64s([0, ch]), h, try b.int64s([p]), w, try b.int64s([p])], scope: s,
                                [.int("axis", 0)])
        }
        let blocks = b.add("Reshape", ["pixel_values", blocksShape], scope: s)                 // (N, C, h, p, w, p)
        let ordered = b.add("Transpose", [blocks], scope: s, [.ints("perm", [0, 2, 4, 1, 3, 5])])  // (N, h, w, C, p, p)
        let rows = b.add("Reshape", [ordered, try b.int64s([0, -1, ch * p * p])], scope: s)
        return try linear(rows, weight: HubNames.patchWeight, bias: try f32(HubNames.patchBias), scope: s)
    }
}
