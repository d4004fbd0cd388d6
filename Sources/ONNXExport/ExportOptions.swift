import DINOv2
import TensorStore

/// What `DINOv2ONNXExporter` writes: input size, opset, outputs, weight dtype, external data.
public struct ExportOptions: Sendable {
    /// The input's spatial size: fixed (the position table, or DINOv3's RoPE sin/cos, is baked
    /// for it) or dynamic (the graph resamples the table, or computes the RoPE tables, for
    /// whatever H, W it is given).
    public enum ImageSize: Sendable, Equatable, CustomStringConvertible {
        case fixed(height: Int, width: Int)
        case dynamic

        public var description: String {
            switch self {
            case let .fixed(h, w): return "\(h)x\(w)"
            case .dynamic: return "dynamic"
            }
        }

        /// "224", "168x252" (height x width).
        public init?(parsing s: String) {
            let parts = s.lowercased().split(separator: "x", omittingEmptySubsequences: false)
            guard (1...2).contains(parts.count), let h = Int(parts[0]), let w = Int(parts.last ?? "") else { return nil }
            self = .fixed(height: h, width: w)
        }
    }

    /// Graph outputs, named as the official `forward_features` keys.
    public enum Output: String, Sendable, CaseIterable {
        case cls, patch, reg, prenorm

        public var outputName: String {
            switch self {
            case .cls: return "x_norm_clstoken"
            case .patch: return "x_norm_patchtokens"
            case .reg: return "x_norm_regtokens"
            case .prenorm: return "x_prenorm"
            }
        }
    }

    /// Opsets the exporter writes: LayerNormalization needs 17; 25 is the newest checked with
    /// onnxruntime 1.32 and onnx 1.23.
    public static let supportedOpsets = 17...25
    public static let defaultOpset = 18
    /// Protobuf cannot hold a message of 2 GiB or more: past this, weights go to external data.
    public static let protobufLimit = Int(Int32.max)

    public var imageSize: ImageSize = .fixed(height: 224, width: 224)
    public var opset: Int = ExportOptions.defaultOpset
    /// nil: cls and patch, plus reg for register models.
    public var outputs: [Output]?
    /// Storage type of the weights: F32; F16 or BF16 (halve the file; the graph casts them to
    /// float32 and computes in float32); or I8: the Linear weights (patch embedding, qkv, proj,
    /// MLP) quantized per output channel (`Int8Quantization`) with float32 scales, their inputs
    /// quantized per token in the graph and multiplied with MatMulInteger — DinoKit's
    /// `--precision int8` — while every other weight and op stays float32.
    public var dtype: DType = .f32
    /// The weight storage types `dtype` may take.
    public static let supportedDTypes: [DType] = [.f32, .f16, .bf16, .i8]
    /// What an I8 export's metadata and summary call its arithmetic.
    public static let int8Scheme = "int8 (dynamic per-token, MatMulInteger)"
    /// Store tensors of at least `externalDataThreshold` bytes in `<model>.data`.
    public var externalData = false
    public var externalDataThreshold = 1024
    /// Whose position-embedding interpolation the graph reproduces (DINOv2; DINOv3 has no table).
    public var interpolation: InterpolationSemantics = .official
    /// Attention heads when the weights do not say (widths that are not a multiple of 64).
    public var numHeads: Int?
    /// Recorded as producer_version and `dinokit.version`.
    public var producerVersion = "unknown"
    /// A model whose protobuf would reach this size is written with external data even when not
    /// asked for (lowered by tests to exercise the switch without gigabytes of weights).
    var automaticExternalDataLimit = ExportOptions.protobufLimit

    public init() {}

    /// The IR version onnx pairs with each opset (onnx.helper.find_min_ir_version_for): the
    /// oldest that allows it, so older runtimes load the file.
    public static func irVersion(opset: Int) -> Int {
        switch opset {
        case ...18: return 8
        case 19...20: return 9
        case 21...22: return 10
        case 23: return 11
        case 24: return 12
        default: return 13
        }
    }
}
