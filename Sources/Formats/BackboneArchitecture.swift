import TensorStore

/// The shape of a DINOv2 backbone as its hub-layout weights imply it: width, depth, patch size,
/// registers, FFN kind, position grid. The number of heads is not in the weights; every released
/// variant uses head dimension 64, so it is `embedDim / 64` unless the store's metadata says
/// otherwise (`num_heads`, as DinoKit and HF configs record it).
public struct BackboneArchitecture: Equatable, Sendable, CustomStringConvertible {
    public enum FFN: String, Sendable { case mlp, swiglu }

    public var embedDim: Int
    public var depth: Int
    public var numHeads: Int?
    public var patchSize: Int
    public var inChannels: Int
    public var registerTokens: Int
    public var ffn: FFN
    /// Hidden width of the FFN (fc1 rows for MLP; half of w12's rows for SwiGLU).
    public var ffnHidden: Int
    /// Side M of the square position grid (37 for hub models: 518 / 14).
    public var positionGrid: Int
    public var hasMaskToken: Bool

    public init(embedDim: Int, depth: Int, numHeads: Int?, patchSize: Int, inChannels: Int = 3,
                registerTokens: Int, ffn: FFN, ffnHidden: Int, positionGrid: Int, hasMaskToken: Bool = true) {
        self.embedDim = embedDim
        self.depth = depth
        self.numHeads = numHeads
        self.patchSize = patchSize
        self.inChannels = inChannels
        self.registerTokens = registerTokens
        self.ffn = ffn
        self.ffnHidden = ffnHidden
        self.positionGrid = positionGrid
        self.hasMaskToken = hasMaskToken
    }

    /// The hub name when the shape is one of the released variants (`dinov2_vitb14_reg`), else nil.
    public var variant: String? {
        guard patchSize == 14, positionGrid == 37, registerTokens == 0 || registerTokens == 4 else { return nil }
        let base: String
        switch (embedDim, depth, ffn) {
        case (384, 12, .mlp) where ffnHidden == 1536: base = "dinov2_vits14"
        case (768, 12, .mlp) where ffnHidden == 3072: base = "dinov2_vitb14"
        case (1024, 24, .mlp) where ffnHidden == 4096: base = "dinov2_vitl14"
        case (1536, 40, .swiglu) where ffnHidden == 4096: base = "dinov2_vitg14"
        default: return nil
        }
        return registerTokens == 4 ? base + "_reg" : base
    }

    public var description: String {
        "\(variant ?? "custom") (dim \(embedDim), depth \(depth), heads \(numHeads.map(String.init) ?? "?"), patch \(patchSize), registers \(registerTokens), \(ffn.rawValue) \(ffnHidden), grid \(positionGrid)x\(positionGrid))"
    }

    /// Infers the architecture from hub-named tensors. Throws naming the first tensor that is
    /// missing or whose shape does not fit.
    public static func detect(hubStore store: TensorStore) throws -> BackboneArchitecture {
        func shape(_ name: String) throws -> [Int] {
            guard let t = store[name] else { throw ArchitectureError.missingTensor(name) }
            return t.shape.dims
        }
        let pw = try shape("patch_embed.proj.weight")
        guard pw.count == 4, pw[2] == pw[3], pw[2] > 0 else {
            throw ArchitectureError.badShape(name: "patch_embed.proj.weight", shape: pw, expected: "(D, C, p, p)")
        }
        let d = pw[0], channels = pw[1], p = pw[2]
        let pos = try shape("pos_embed")
        guard pos.count == 3, pos[0] == 1, pos[2] == d, pos[1] >= 2 else {
            throw ArchitectureError.badShape(name: "pos_embed", shape: pos, expected: "(1, 1 + M*M, \(d))")
        }
        let n = pos[1] - 1
        let m = Int(Double(n).squareRoot().rounded())
        guard m * m == n else {
            throw ArchitectureError.badShape(name: "pos_embed", shape: pos, expected: "(1, 1 + M*M, \(d)) with a square grid")
        }
        var registers = 0
        if let r = store["register_tokens"] {
            guard r.shape.rank == 3, r.shape[0] == 1, r.shape[2] == d else {
                throw ArchitectureError.badShape(name: "register_tokens", shape: r.shape.dims, expected: "(1, R, \(d))")
            }
            registers = r.shape[1]
        }
        var depth = 0
        while store["blocks.\(depth).norm1.weight"] != nil { depth += 1 }
        guard depth > 0 else { throw ArchitectureError.missingTensor("blocks.0.norm1.weight") }
        let ffn: FFN
        let hidden: Int
        if store["blocks.0.mlp.w12.weight"] != nil {
            ffn = .swiglu
            let w12 = try shape("blocks.0.mlp.w12.weight")
            guard w12.count == 2, w12[1] == d, w12[0] % 2 == 0 else {
                throw ArchitectureError.badShape(name: "blocks.0.mlp.w12.weight", shape: w12, expected: "(2H, \(d))")
            }
            hidden = w12[0] / 2
        } else {
            ffn = .mlp
            let fc1 = try shape("blocks.0.mlp.fc1.weight")
            guard fc1.count == 2, fc1[1] == d else {
                throw ArchitectureError.badShape(name: "blocks.0.mlp.fc1.weight", shape: fc1, expected: "(H, \(d))")
            }
            hidden = fc1[0]
        }
        var heads: Int? = nil
        if let s = store.metadata["num_heads"] {
            guard let h = Int(s), h > 0, d % h == 0 else { throw ArchitectureError.badMetadata(key: "num_heads", value: s) }
            heads = h
        } else if d % 64 == 0 {
            heads = d / 64
        }
        return BackboneArchitecture(embedDim: d, depth: depth, numHeads: heads, patchSize: p, inChannels: channels,
                                    registerTokens: registers, ffn: ffn, ffnHidden: hidden, positionGrid: m,
                                    hasMaskToken: store["mask_token"] != nil)
    }
}

public enum ArchitectureError: Error, CustomStringConvertible, Equatable {
    case missingTensor(String)
    case badShape(name: String, shape: [Int], expected: String)
    case badMetadata(key: String, value: String)

    public var description: String {
        switch self {
        case let .missingTensor(name): return "missing tensor '\(name)' (not a DINOv2 backbone in hub layout?)"
        case let .badShape(name, shape, expected): return "tensor '\(name)' has shape \(shape), expected \(expected)"
        case let .badMetadata(key, value): return "metadata '\(key)' = '\(value)' is not valid"
        }
    }
}
