import Formats
import TensorStore

/// How the position table is resampled to an input's patch grid (`interpolate_pos_encoding`).
/// Two numbers decide it, as in the official code: a non-zero `offset` selects F.interpolate's
/// `scale_factor` branch with factors (h + offset)/M, (w + offset)/M — whose kernel then samples
/// with 1/factor, not M/h — and offset 0 selects the `size=(h, w)` branch; `antialias` picks
/// the antialiased (PIL-style, a = −0.5) kernel over the plain one (A = −0.75).
public struct PositionInterpolation: Sendable, Equatable, CustomStringConvertible {
    public var offset: Double
    public var antialias: Bool

    public init(offset: Double, antialias: Bool) {
        self.offset = offset
        self.antialias = antialias
    }

    /// What the official hub models do: registers → (0, antialias), no registers → (0.1, plain).
    public static func official(registerTokens: Int) -> PositionInterpolation {
        registerTokens > 0 ? PositionInterpolation(offset: 0, antialias: true)
                           : PositionInterpolation(offset: 0.1, antialias: false)
    }

    /// HuggingFace transformers: `Dinov2Model` resizes to size (h, w) without offset or antialias;
    /// `Dinov2WithRegistersModel` matches the official register models.
    public static func huggingFace(registerTokens: Int) -> PositionInterpolation {
        registerTokens > 0 ? PositionInterpolation(offset: 0, antialias: true)
                           : PositionInterpolation(offset: 0, antialias: false)
    }

    public static func semantics(_ s: InterpolationSemantics, registerTokens: Int) -> PositionInterpolation {
        switch s {
        case .official: return official(registerTokens: registerTokens)
        case .hf: return huggingFace(registerTokens: registerTokens)
        }
    }

    public var description: String {
        offset != 0 ? "scale_factor (offset \(offset))\(antialias ? ", antialias" : "")"
                    : "size\(antialias ? ", antialias" : "")"
    }
}

/// Whose position-embedding interpolation to reproduce (golden manifests' "interpolation").
public enum InterpolationSemantics: String, Sendable, Codable, CaseIterable {
    case official
    case hf
}

/// Everything that fixes a backbone's shape and numerics: the `BackboneArchitecture` the weights
/// imply (one definition of the shape, shared with Formats) plus what a caller may choose — the
/// head count, LayerNorm eps, position interpolation, LayerScale. Detected from hub-named
/// weights; every field may be overridden before building a `Model`.
public struct Config: Sendable, Equatable, CustomStringConvertible {
    public typealias FFN = BackboneArchitecture.FFN
    public typealias Family = BackboneArchitecture.Family

    /// The shape; the properties below read and write it.
    public var architecture: BackboneArchitecture
    public var numHeads: Int
    /// Whether blocks have LayerScale (`ls1`/`ls2`; every released model does).
    public var layerScale: Bool
    public var layerNormEps: Float
    /// DINOv2 only (DINOv3 has no position table).
    public var interpolation: PositionInterpolation

    public var family: Family { get { architecture.family } set { architecture.family = newValue } }
    public var embedDim: Int { get { architecture.embedDim } set { architecture.embedDim = newValue } }
    public var depth: Int { get { architecture.depth } set { architecture.depth = newValue } }
    public var patchSize: Int { get { architecture.patchSize } set { architecture.patchSize = newValue } }
    public var inChannels: Int { get { architecture.inChannels } set { architecture.inChannels = newValue } }
    /// DINOv2 register tokens or DINOv3 storage tokens (both sit between cls and the patches).
    public var registerTokens: Int { get { architecture.registerTokens } set { architecture.registerTokens = newValue } }
    public var ffn: FFN { get { architecture.ffn } set { architecture.ffn = newValue } }
    /// fc1 rows (MLP) or the gate's rows (SwiGLU).
    public var ffnHidden: Int { get { architecture.ffnHidden } set { architecture.ffnHidden = newValue } }
    /// Side M of the square position grid (37 for DINOv2 hub models; 0 for DINOv3).
    public var positionGrid: Int { get { architecture.positionGrid } set { architecture.positionGrid = newValue } }
    /// The hub name when the shape is a released variant.
    public var variant: String? { architecture.variant }

    public var headDim: Int { embedDim / numHeads }

    public init(embedDim: Int, depth: Int, numHeads: Int, patchSize: Int = 14, inChannels: Int = 3,
                registerTokens: Int = 0, ffn: FFN = .mlp, ffnHidden: Int? = nil, positionGrid: Int = 37,
                layerScale: Bool = true, layerNormEps: Float = 1e-6, interpolation: PositionInterpolation? = nil) {
        let arch = BackboneArchitecture(embedDim: embedDim, depth: depth, numHeads: numHeads, patchSize: patchSize,
                                        inChannels: inChannels, registerTokens: registerTokens, ffn: ffn,
                                        ffnHidden: ffnHidden ?? 4 * embedDim, positionGrid: positionGrid)
        self.init(arch, numHeads: numHeads, layerScale: layerScale, layerNormEps: layerNormEps, interpolation: interpolation)
    }

    /// The config of a detected architecture with a known head count; the numerics default to the
    /// official models' (LayerNorm eps 1e-6 for DINOv2, 1e-5 for DINOv3; the official position
    /// interpolation).
    public init(_ arch: BackboneArchitecture, numHeads: Int, layerScale: Bool, layerNormEps: Float? = nil,
                interpolation: PositionInterpolation? = nil) {
        self.architecture = arch
        self.architecture.numHeads = numHeads
        self.numHeads = numHeads
        self.layerScale = layerScale
        self.layerNormEps = layerNormEps ?? (arch.family == .dinov3 ? 1e-5 : 1e-6)
        self.interpolation = interpolation ?? .official(registerTokens: arch.registerTokens)
    }

    /// The config hub-named weights imply. Heads come from `numHeads`, else the store's
    /// `num_heads` metadata, else D/64 (every released variant). Interpolation follows the
    /// official models: register models (offset 0, antialias), others (offset 0.1, plain).
    public static func detect(hubStore store: TensorStore, numHeads: Int? = nil) throws -> Config {
        let arch: BackboneArchitecture
        do {
            arch = try BackboneArchitecture.detect(hubStore: store)
        } catch let e as ArchitectureError {
            switch e {
            case let .missingTensor(name):
                throw DINOv2Error.missingWeight(name: name, expected: HubNames.expectedShapeHint(name))
            case let .badShape(name, shape, expected):
                throw DINOv2Error.unsupportedArchitecture("tensor '\(name)' has shape \(shape), expected \(expected)")
            case let .badMetadata(key, value):
                throw DINOv2Error.unsupportedArchitecture("metadata '\(key)' = '\(value)' is not a valid head count")
            }
        }
        guard let heads = numHeads ?? arch.numHeads else {
            throw DINOv2Error.unsupportedArchitecture(
                "cannot infer the number of heads for width \(arch.embedDim) (not a multiple of 64); pass --num-heads N, or record 'num_heads' in the weights' metadata (dinokit convert --num-heads N)")
        }
        let config = Config(arch, numHeads: heads, layerScale: store["blocks.0.ls1.gamma"] != nil)
        try config.validate()
        return config
    }

    /// Rejects configs the forward cannot run.
    public func validate() throws {
        guard embedDim > 0, depth >= 0, patchSize > 0, inChannels > 0, registerTokens >= 0, ffnHidden > 0,
              family == .dinov3 ? positionGrid == 0 : positionGrid > 0 else {
            throw DINOv2Error.unsupportedArchitecture("non-positive size in \(self)")
        }
        guard numHeads > 0, embedDim % numHeads == 0 else {
            throw DINOv2Error.unsupportedArchitecture("\(numHeads) heads do not divide width \(embedDim)")
        }
        // RoPE rotates halves of each head, whose angles come in (row, column) pairs of periods.
        guard family == .dinov2 || headDim % 4 == 0 else {
            throw DINOv2Error.unsupportedArchitecture("head dimension \(headDim) is not a multiple of 4, which DINOv3's RoPE needs")
        }
    }

    /// Refuses DINOv3 weights in the paths written for DINOv2 only so far (SSL training), naming
    /// the path, before any of them reads a position table the weights do not have.
    public func requireDINOv2(for purpose: String) throws {
        guard family == .dinov2 else {
            throw DINOv2Error.unsupportedArchitecture("\(variant ?? "this DINOv3 backbone"): \(purpose) supports DINOv2 backbones only so far (forward, embed, verify, pca, attention, probe, export-onnx and train finetune take DINOv3)")
        }
    }

    public var description: String {
        var text = architecture.description
        if family == .dinov2 { text.removeLast(); text += ", interpolation \(interpolation))" }
        return text
    }
}
