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

/// Everything that fixes a backbone's shape and numerics. Detected from hub-named weights; every
/// field may be overridden before building a `Model`.
///
/// The shape fields are those of `BackboneArchitecture` (Formats), which reads them from the
/// weights; `init(_:numHeads:layerScale:)` builds a Config from one, and the FFN kind is the
/// same enum, so the two cannot drift apart.
public struct Config: Sendable, Equatable, CustomStringConvertible {
    public typealias FFN = BackboneArchitecture.FFN

    public var embedDim: Int
    public var depth: Int
    public var numHeads: Int
    public var patchSize: Int
    public var inChannels: Int
    public var registerTokens: Int
    public var ffn: FFN
    /// fc1 rows (MLP) or half of w12's rows (SwiGLU).
    public var ffnHidden: Int
    /// Side M of the square position grid (37 for hub models).
    public var positionGrid: Int
    /// Whether blocks have LayerScale (`ls1`/`ls2`; every released model does).
    public var layerScale: Bool
    public var layerNormEps: Float
    public var interpolation: PositionInterpolation
    /// The hub name when the shape is a released variant.
    public var variant: String?

    public var headDim: Int { embedDim / numHeads }

    public init(embedDim: Int, depth: Int, numHeads: Int, patchSize: Int = 14, inChannels: Int = 3,
                registerTokens: Int = 0, ffn: FFN = .mlp, ffnHidden: Int? = nil, positionGrid: Int = 37,
                layerScale: Bool = true, layerNormEps: Float = 1e-6, interpolation: PositionInterpolation? = nil,
                variant: String? = nil) {
        self.embedDim = embedDim
        self.depth = depth
        self.numHeads = numHeads
        self.patchSize = patchSize
        self.inChannels = inChannels
        self.registerTokens = registerTokens
        self.ffn = ffn
        self.ffnHidden = ffnHidden ?? 4 * embedDim
        self.positionGrid = positionGrid
        self.layerScale = layerScale
        self.layerNormEps = layerNormEps
        self.interpolation = interpolation ?? .official(registerTokens: registerTokens)
        self.variant = variant
    }

    /// The config of a detected architecture with a known head count; the numerics (LayerNorm
    /// eps, position interpolation) are the official models'.
    public init(_ arch: BackboneArchitecture, numHeads: Int, layerScale: Bool) {
        self.init(embedDim: arch.embedDim, depth: arch.depth, numHeads: numHeads, patchSize: arch.patchSize,
                  inChannels: arch.inChannels, registerTokens: arch.registerTokens, ffn: arch.ffn,
                  ffnHidden: arch.ffnHidden, positionGrid: arch.positionGrid, layerScale: layerScale,
                  variant: arch.variant)
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
              positionGrid > 0 else {
            throw DINOv2Error.unsupportedArchitecture("non-positive size in \(self)")
        }
        guard numHeads > 0, embedDim % numHeads == 0 else {
            throw DINOv2Error.unsupportedArchitecture("\(numHeads) heads do not divide width \(embedDim)")
        }
    }

    public var description: String {
        "\(variant ?? "custom") (dim \(embedDim), depth \(depth), heads \(numHeads), patch \(patchSize), registers \(registerTokens), \(ffn.rawValue) \(ffnHidden), grid \(positionGrid)x\(positionGrid), interpolation \(interpolation))"
    }
}
