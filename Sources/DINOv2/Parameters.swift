import Kernels
import TensorStore

/// The official torch-hub parameter names: the one place model code spells them. Other layouts
/// (HF, timm, training checkpoints) are translated to these before binding (KeyLayouts).
public enum HubNames {
    public static let clsToken = "cls_token"
    public static let posEmbed = "pos_embed"
    public static let registerTokens = "register_tokens"
    public static let maskToken = "mask_token"
    public static let patchWeight = "patch_embed.proj.weight"
    public static let patchBias = "patch_embed.proj.bias"
    public static let normWeight = "norm.weight"
    public static let normBias = "norm.bias"

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

/// One block's weights, converted to Float32 at load. Linear weights keep PyTorch's (out, in)
/// layout; `fc1`/`fc2` hold `w12`/`w3` for SwiGLU blocks. `ls1`/`ls2` are nil without LayerScale.
public struct BlockParameters: Sendable {
    public var norm1Weight, norm1Bias: FloatBuffer
    public var qkvWeight, qkvBias: FloatBuffer
    public var projWeight, projBias: FloatBuffer
    public var ls1: FloatBuffer?
    public var norm2Weight, norm2Bias: FloatBuffer
    public var fc1Weight, fc1Bias: FloatBuffer
    public var fc2Weight, fc2Bias: FloatBuffer
    public var ls2: FloatBuffer?
}

/// Every backbone parameter as contiguous Float32 (the llm.c `ParameterTensors` idea: a backward
/// pass can mirror this struct for gradients and optimiser state).
public struct Parameters: Sendable {
    public var clsToken: FloatBuffer        // (D)
    public var posEmbed: FloatBuffer        // (1 + M², D)
    public var registerTokens: FloatBuffer? // (R, D)
    public var maskToken: FloatBuffer?      // (D)
    public var patchWeight: FloatBuffer     // (D, C·p·p), the Conv2d weight flattened
    public var patchBias: FloatBuffer       // (D)
    public var blocks: [BlockParameters]
    public var normWeight, normBias: FloatBuffer

    /// Binds and converts the tensors `config` calls for, checking each name and shape.
    public init(hubStore store: TensorStore, config c: Config) throws {
        let d = c.embedDim, p = c.patchSize
        let b = WeightBinder(store: store)
        clsToken = try b.bind(HubNames.clsToken, [1, 1, d])
        posEmbed = try b.bind(HubNames.posEmbed, [1, 1 + c.positionGrid * c.positionGrid, d])
        registerTokens = c.registerTokens > 0 ? try b.bind(HubNames.registerTokens, [1, c.registerTokens, d]) : nil
        maskToken = store[HubNames.maskToken] == nil ? nil : try b.bind(HubNames.maskToken, [1, d])
        patchWeight = try b.bind(HubNames.patchWeight, [d, c.inChannels, p, p])
        patchBias = try b.bind(HubNames.patchBias, [d])
        let (fc1, fc2) = c.ffn == .swiglu ? ("mlp.w12", "mlp.w3") : ("mlp.fc1", "mlp.fc2")
        let fc1Rows = c.ffn == .swiglu ? 2 * c.ffnHidden : c.ffnHidden
        blocks = try (0..<c.depth).map { i in
            func w(_ suffix: String, _ shape: [Int]) throws -> FloatBuffer { try b.bind(HubNames.block(i, suffix), shape) }
            return BlockParameters(
                norm1Weight: try w("norm1.weight", [d]), norm1Bias: try w("norm1.bias", [d]),
                qkvWeight: try w("attn.qkv.weight", [3 * d, d]), qkvBias: try w("attn.qkv.bias", [3 * d]),
                projWeight: try w("attn.proj.weight", [d, d]), projBias: try w("attn.proj.bias", [d]),
                ls1: c.layerScale ? try w("ls1.gamma", [d]) : nil,
                norm2Weight: try w("norm2.weight", [d]), norm2Bias: try w("norm2.bias", [d]),
                fc1Weight: try w(fc1 + ".weight", [fc1Rows, d]), fc1Bias: try w(fc1 + ".bias", [fc1Rows]),
                fc2Weight: try w(fc2 + ".weight", [d, c.ffnHidden]), fc2Bias: try w(fc2 + ".bias", [d]),
                ls2: c.layerScale ? try w("ls2.gamma", [d]) : nil)
        }
        normWeight = try b.bind(HubNames.normWeight, [d])
        normBias = try b.bind(HubNames.normBias, [d])
    }
}

/// Looks a weight up by hub name, checks its shape, converts it to contiguous Float32.
struct WeightBinder {
    let store: TensorStore

    func bind(_ name: String, _ shape: [Int]) throws -> FloatBuffer {
        let expected = "(" + shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? ",)" : ")")
        guard let t = store[name] else { throw DINOv2Error.missingWeight(name: name, expected: expected) }
        guard t.shape.dims == shape else { throw DINOv2Error.weightShape(name: name, shape: t.shape.dims, expected: expected) }
        guard t.dtype.isFloatingPoint else { throw DINOv2Error.weightDType(name: name, dtype: t.dtype) }
        let buffer = FloatBuffer(count: t.elementCount)
        if t.dtype == .f32 {
            t.withContiguousBytes { raw in
                if raw.count > 0 { UnsafeMutableRawPointer(buffer.pointer).copyMemory(from: raw.baseAddress!, byteCount: raw.count) }
            }
        } else {
            let f = t.floats()
            f.withUnsafeBufferPointer { if let src = $0.baseAddress { buffer.pointer.update(from: src, count: f.count) } }
        }
        return buffer
    }
}
