import Foundation
import Kernels
import TensorStore

/// The official torch-hub parameter names: the one place model code spells them. Other layouts
/// (HF, timm, training checkpoints) are translated to these before binding (KeyLayouts).
public enum HubNames {
    public static let clsToken = "cls_token"
    public static let posEmbed = "pos_embed"
    public static let registerTokens = "register_tokens"
    /// DINOv3's name for its register tokens.
    public static let storageTokens = "storage_tokens"
    /// DINOv3: the RoPE periods buffer, (D_head / 4,).
    public static let ropePeriods = "rope_embed.periods"
    public static let maskToken = "mask_token"
    public static let patchWeight = "patch_embed.proj.weight"
    public static let patchBias = "patch_embed.proj.bias"
    public static let normWeight = "norm.weight"
    public static let normBias = "norm.bias"
    /// DINOv3 with untied norms: the norm of the cls and storage tokens.
    public static let classNormWeight = "cls_norm.weight"
    public static let classNormBias = "cls_norm.bias"

    /// `blocks.<i>.<suffix>`.
    public static func block(_ i: Int, _ suffix: String) -> String { "blocks.\(i).\(suffix)" }

    /// A readable expected shape for a name the architecture detector found missing.
    static func expectedShapeHint(_ name: String) -> String {
        switch name {
        case patchWeight: return "(D, 3, 14, 14)"
        case posEmbed: return "(1, 1 + M*M, D)"
        case let n where n.hasSuffix("norm1.weight"): return "(D,)"
        case let n where n.hasSuffix("mlp.fc1.weight"): return "(4D, D)"
        default: return "as in the hub model"
        }
    }
}

/// One block's weights as the forward reads them: the linear layers' packed for the GEMM in the
/// model's precision as they are bound (`WeightBinder.bindLinear`; no Float32 copy of them is
/// kept), the rest (norms, biases, layer scales) converted to Float32. `fc1`/`fc2` hold
/// `w12`/`w3` for SwiGLU blocks (DINOv3's `w1` and `w2` stacked into `w12`). `ls1`/`ls2` are nil
/// without LayerScale. `qkvBias` is the bias the attention adds: DINOv3's `bias · bias_mask` (its
/// key third is 0), zeros where the model has no qkv bias.
public struct BlockParameters: Sendable {
    public var norm1Weight, norm1Bias: FloatBuffer
    let qkv: PackedLinearWeights
    public var qkvBias: FloatBuffer
    let proj: PackedLinearWeights
    public var projBias: FloatBuffer
    public var ls1: FloatBuffer?
    public var norm2Weight, norm2Bias: FloatBuffer
    let fc1: PackedLinearWeights
    public var fc1Bias: FloatBuffer
    let fc2: PackedLinearWeights
    public var fc2Bias: FloatBuffer
    public var ls2: FloatBuffer?

    /// Binds and converts block `i`'s tensors, checking each name and shape: the one list of a
    /// block's weights, for a model bound at once and for a streamed one bound block by block.
    init(binder b: WeightBinder, block i: Int, config c: Config) throws {
        let d = c.embedDim, v3 = c.family == .dinov3
        let fc1Rows = c.ffn == .swiglu ? 2 * c.ffnHidden : c.ffnHidden
        func w(_ suffix: String, _ shape: [Int]) throws -> FloatBuffer { try b.bind(HubNames.block(i, suffix), shape) }
        func linear(_ suffixes: String..., each shape: [Int]) throws -> PackedLinearWeights {
            try b.bindLinear(suffixes.map { HubNames.block(i, $0) }, each: shape)
        }
        let fc2: String
        switch (c.ffn, v3) {
        case (.mlp, _):
            (fc1, fc1Bias, fc2) = (try linear("mlp.fc1.weight", each: [fc1Rows, d]), try w("mlp.fc1.bias", [fc1Rows]), "mlp.fc2")
        case (.swiglu, false):
            (fc1, fc1Bias, fc2) = (try linear("mlp.w12.weight", each: [fc1Rows, d]), try w("mlp.w12.bias", [fc1Rows]), "mlp.w3")
        case (.swiglu, true):
            // w3(silu(w1 x) · w2 x) is DINOv2's silu(x1) · x2 with w12 = [w1; w2].
            let h = c.ffnHidden
            fc1 = try linear("mlp.w1.weight", "mlp.w2.weight", each: [h, d])
            fc1Bias = try .stacked(w("mlp.w1.bias", [h]), w("mlp.w2.bias", [h]))
            fc2 = "mlp.w3"
        }
        norm1Weight = try w("norm1.weight", [d])
        norm1Bias = try w("norm1.bias", [d])
        qkv = try linear("attn.qkv.weight", each: [3 * d, d])
        qkvBias = try b.qkvBias(block: i, config: c)
        proj = try linear("attn.proj.weight", each: [d, d])
        projBias = try w("attn.proj.bias", [d])
        ls1 = c.layerScale ? try w("ls1.gamma", [d]) : nil
        norm2Weight = try w("norm2.weight", [d])
        norm2Bias = try w("norm2.bias", [d])
        self.fc2 = try linear(fc2 + ".weight", each: [d, c.ffnHidden])
        fc2Bias = try w(fc2 + ".bias", [d])
        ls2 = c.layerScale ? try w("ls2.gamma", [d]) : nil
    }

    /// Bytes the block holds: its Float32 tensors and its packed linear weights.
    var byteCount: Int {
        [norm1Weight, norm1Bias, qkvBias, projBias, ls1, norm2Weight, norm2Bias, fc1Bias, fc2Bias, ls2]
            .reduce(0) { $0 + ($1?.count ?? 0) * 4 } + qkv.byteCount + proj.byteCount + fc1.byteCount + fc2.byteCount
    }
}

/// Every backbone parameter as the forward reads it: the linear layers' weights (patch embedding
/// included) packed for the GEMM in the model's precision, everything else as contiguous Float32.
/// Training keeps its own Float32 tensors (the Training module's `backboneLayout`); inference
/// holds each weight once.
public struct Parameters: Sendable {
    public var clsToken: FloatBuffer        // (D)
    public var posEmbed: FloatBuffer?       // (1 + M², D); DINOv2 only
    public var registerTokens: FloatBuffer? // (R, D): DINOv2 registers or DINOv3 storage tokens
    public var ropePeriods: FloatBuffer?    // (D_head / 4); DINOv3 only
    public var maskToken: FloatBuffer?      // (D)
    let patch: PackedLinearWeights          // (D, C·p·p), the Conv2d weight flattened
    public var patchBias: FloatBuffer       // (D)
    /// Every block; none in a streamed model (`Model.Loading.streamed`), which binds them one at
    /// a time in each forward.
    public var blocks: [BlockParameters]
    public var normWeight, normBias: FloatBuffer
    /// DINOv3 `cls_norm` (untied norms), applied to the cls and storage tokens.
    public var classNorm: (weight: FloatBuffer, bias: FloatBuffer)?

    /// Binds the tensors `config` calls for, checking each name and shape: the linear weights
    /// packed in `precision` (`Precision`), the rest converted to Float32.
    public init(hubStore store: TensorStore, config c: Config, precision: Precision = .f32) throws {
        try self.init(stemOf: store, config: c, precision: precision)
        let b = WeightBinder(store: store, precision: precision)
        blocks = try (0..<c.depth).map { try BlockParameters(binder: b, block: $0, config: c) }
    }

    /// Everything but the blocks: the tokens, the patch embedding, the final norms.
    init(stemOf store: TensorStore, config c: Config, precision: Precision) throws {
        let d = c.embedDim, p = c.patchSize, v3 = c.family == .dinov3
        let b = WeightBinder(store: store, precision: precision)
        clsToken = try b.bind(HubNames.clsToken, [1, 1, d])
        posEmbed = v3 ? nil : try b.bind(HubNames.posEmbed, [1, 1 + c.positionGrid * c.positionGrid, d])
        let tokens = v3 ? HubNames.storageTokens : HubNames.registerTokens
        registerTokens = c.registerTokens > 0 ? try b.bind(tokens, [1, c.registerTokens, d]) : nil
        maskToken = store[HubNames.maskToken] == nil ? nil : try b.bind(HubNames.maskToken, [1, d])
        patch = try b.bindLinear([HubNames.patchWeight], each: [d, c.inChannels, p, p])
        patchBias = try b.bind(HubNames.patchBias, [d])
        ropePeriods = v3 ? try RotaryPositions.periods(store: store, binder: b, config: c) : nil
        blocks = []
        normWeight = try b.bind(HubNames.normWeight, [d])
        normBias = try b.bind(HubNames.normBias, [d])
        classNorm = v3 && c.architecture.untiedClassNorm
            ? (try b.bind(HubNames.classNormWeight, [d]), try b.bind(HubNames.classNormBias, [d])) : nil
    }

    /// Bytes held outside the blocks: Float32 tensors and the packed patch embedding.
    var stemByteCount: Int {
        [clsToken, posEmbed, registerTokens, ropePeriods, maskToken, patchBias, normWeight, normBias,
         classNorm?.weight, classNorm?.bias].reduce(0) { $0 + ($1?.count ?? 0) * 4 } + patch.byteCount
    }
}

extension Parameters {
    /// Block `i`'s qkv bias as the attention adds it (`WeightBinder.qkvBias`: DINOv3's
    /// `bias · bias_mask`), for an exporter that folds it into a constant without binding every
    /// weight.
    public static func attentionBias(hubStore store: TensorStore, config: Config, block i: Int) throws -> [Float] {
        try WeightBinder(store: store).qkvBias(block: i, config: config).array()
    }
}

extension FloatBuffer {
    /// `a` followed by `b` in one buffer (rows stacked, as `torch.cat(dim=0)`).
    static func stacked(_ a: FloatBuffer, _ b: FloatBuffer) -> FloatBuffer {
        let out = FloatBuffer(count: a.count + b.count)
        out.pointer.update(from: a.pointer, count: a.count)
        (out.pointer + a.count).update(from: b.pointer, count: b.count)
        return out
    }
}

/// Looks a weight up by hub name, checks its shape and binds it: converted to contiguous Float32
/// (`bind`), or, for a linear layer's weight, packed for the GEMM in `precision` (`bindLinear`).
/// The file pages a tensor was read from are given back once it is bound
/// (`Tensor.dropResidentPages`): a model binding a mapped checkpoint then holds its own copy, not
/// the file's pages as well. With `checkingOnly`, names, shapes and dtypes are checked and nothing
/// is read (the buffers are empty, the packed weights `unbound`): how a streamed model checks every
/// block at load and binds each in its forwards.
struct WeightBinder {
    let store: TensorStore
    var checkingOnly = false
    /// The format `bindLinear` packs in.
    var precision: Precision = .f32

    /// What a `checkingOnly` binder gives for a linear weight.
    static let unbound = PackedLinearWeights(FloatBuffer(count: 1), outFeatures: 1, inFeatures: 1)

    /// The tensor `name`, its shape and dtype checked.
    func tensor(_ name: String, _ shape: [Int]) throws -> Tensor {
        let expected = "(" + shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? ",)" : ")")
        guard let t = store[name] else { throw DINOv2Error.missingWeight(name: name, expected: expected) }
        guard t.shape.dims == shape else { throw DINOv2Error.weightShape(name: name, shape: t.shape.dims, expected: expected) }
        guard t.dtype.isFloatingPoint else { throw DINOv2Error.weightDType(name: name, dtype: t.dtype) }
        return t
    }

    func bind(_ name: String, _ shape: [Int]) throws -> FloatBuffer {
        let t = try tensor(name, shape)
        guard !checkingOnly else { return FloatBuffer(count: 0) }
        let buffer = FloatBuffer(count: t.elementCount)
        Self.widen(t, into: buffer.pointer)
        return buffer
    }

    /// The linear weights `names`, each of shape `each` (out, in…: a Conv2d's trailing dimensions
    /// are flattened into `in`), stacked by rows (`torch.cat(dim=0)`) and packed for the GEMM in
    /// `precision`. BF16 weights packed as bf16 go from their bits straight to the panels: no
    /// Float32 value of them is ever made, and rounding one would give back the same bits (NaNs
    /// included, `PackedLinearWeights(bf16Weight:)`). Any other weight is widened into one Float32
    /// buffer, packed (at bf16 rounded once there, at int8 quantized per output channel), and
    /// released.
    func bindLinear(_ names: [String], each shape: [Int]) throws -> PackedLinearWeights {
        let parts = try names.map { try tensor($0, shape) }
        guard !checkingOnly else { return Self.unbound }
        let partCount = shape.reduce(1, *), inFeatures = partCount / shape[0], outFeatures = names.count * shape[0]
        if precision == .bf16, parts.allSatisfy({ $0.dtype == .bf16 }) {
            let bits = UnsafeMutablePointer<UInt16>.allocate(capacity: names.count * partCount)
            defer { bits.deallocate() }
            for (j, t) in parts.enumerated() {
                t.withContiguousBytes { raw in
                    if raw.count > 0 { UnsafeMutableRawPointer(bits + j * partCount).copyMemory(from: raw.baseAddress!, byteCount: raw.count) }
                }
                t.dropResidentPages()
            }
            BindingTally.current?.add(bf16: outFeatures * inFeatures)
            return PackedLinearWeights(bf16Weight: bits, outFeatures: outFeatures, inFeatures: inFeatures)
        }
        let floats = FloatBuffer(count: names.count * partCount)
        for (j, t) in parts.enumerated() { Self.widen(t, into: floats.pointer + j * partCount) }
        BindingTally.current?.add(widened: outFeatures * inFeatures)
        return PackedLinearWeights(floats, outFeatures: outFeatures, inFeatures: inFeatures, precision: precision)
    }

    /// `t`'s elements as Float32 into `dst` (exact from every float format but F64, which
    /// rounds), then its file pages given back.
    static func widen(_ t: Tensor, into dst: UnsafeMutablePointer<Float>) {
        let count = t.elementCount
        t.withContiguousBytes { raw in
            guard count > 0 else { return }
            if DTypeConversion.converts(from: t.dtype, to: .f32) {
                // F32 is copied, F16, BF16 and F64 converted: no intermediate array.
                try! DTypeConversion.convert(raw, from: t.dtype, to: .f32,  // the pair was checked
                                             into: UnsafeMutableRawBufferPointer(start: dst, count: count * 4))
            } else {
                let f = DTypeConversion.floats(from: raw, dtype: t.dtype)
                f.withUnsafeBufferPointer { dst.update(from: $0.baseAddress!, count: count) }
            }
        }
        t.dropResidentPages()
    }

    /// Block `i`'s qkv bias as the attention adds it: the stored bias, times DINOv3's `bias_mask`
    /// when the model has one (`LinearKMaskedBias`: 1 on q and v, 0 on k, so the products are the
    /// bias itself or zero, bit for bit), or zeros when the model has no qkv bias (7B).
    func qkvBias(block i: Int, config c: Config) throws -> FloatBuffer {
        let rows = 3 * c.embedDim
        guard c.architecture.qkvBias else { return FloatBuffer(count: checkingOnly ? 0 : rows) }
        let bias = try bind(HubNames.block(i, "attn.qkv.bias"), [rows])
        guard c.architecture.maskedKeyBias else { return bias }
        let maskName = HubNames.block(i, "attn.qkv.bias_mask")
        let mask = try bind(maskName, [rows])
        guard !checkingOnly else { return bias }
        for j in 0..<rows {
            // The official buffer starts as NaN and is filled when the model is built; a NaN left
            // in a file would turn every output into NaN there.
            guard mask.pointer[j].isFinite else { throw DINOv2Error.invalidWeight(name: maskName, reason: "element \(j) is \(mask.pointer[j])") }
            bias.pointer[j] *= mask.pointer[j]
        }
        return bias
    }
}

/// What `WeightBinder` did with the linear weights it bound while a tally is `current`: how many
/// elements it widened to Float32 and how many it packed straight from bf16 bits. Tests read it
/// to see that a bf16 file at bf16 never has its linear weights in Float32.
final class BindingTally: @unchecked Sendable {
    @TaskLocal static var current: BindingTally?

    private let lock = NSLock()
    private var widened = 0, bf16 = 0

    func add(widened w: Int = 0, bf16 b: Int = 0) { lock.withLock { widened += w; bf16 += b } }

    /// (Float32 elements widened, bf16 elements packed from their bits) so far.
    var counts: (widened: Int, bf16: Int) { lock.withLock { (widened, bf16) } }
}
