import TensorStore

/// The shape of a DINOv2 or DINOv3 backbone as its hub-layout weights imply it: family, width,
/// depth, patch size, registers (DINOv3's storage tokens), FFN kind, position scheme. The number
/// of heads is not in the weights; every released variant uses head dimension 64, so it is
/// `embedDim / 64` unless the store's metadata says otherwise (`num_heads`, as DinoKit and HF
/// configs record it).
///
/// This is the one description of a backbone's shape: `DINOv2.Config` holds one and adds only
/// the numerics a caller may override (heads, LayerNorm eps, interpolation).
public struct BackboneArchitecture: Equatable, Sendable, CustomStringConvertible {
    public enum FFN: String, Sendable { case mlp, swiglu }

    /// Which model family's token assembly and position scheme the weights follow.
    public enum Family: String, Sendable, Codable, CaseIterable {
        /// A learned position table added to the tokens (interpolated to the input's grid).
        case dinov2
        /// Axial RoPE on the patch tokens' queries and keys in every attention; no table.
        case dinov3
    }

    public var family: Family
    public var embedDim: Int
    public var depth: Int
    public var numHeads: Int?
    public var patchSize: Int
    public var inChannels: Int
    /// Register tokens (DINOv2 `register_tokens`) or storage tokens (DINOv3 `storage_tokens`).
    public var registerTokens: Int
    public var ffn: FFN
    /// Hidden width of the FFN (fc1 rows for MLP; half of w12's rows, or w1's rows, for SwiGLU).
    public var ffnHidden: Int
    /// Side M of the square position grid (37 for DINOv2 hub models: 518 / 14); 0 for DINOv3.
    public var positionGrid: Int
    public var hasMaskToken: Bool
    /// DINOv3: the qkv bias is multiplied by a stored `bias_mask` (`LinearKMaskedBias`).
    public var maskedKeyBias: Bool
    /// Whether the qkv projection has a bias at all (DINOv3 7B has none).
    public var qkvBias: Bool
    /// DINOv3 `untie_cls_and_patch_norms`: cls and storage tokens use `cls_norm`, patches `norm`.
    public var untiedClassNorm: Bool
    /// DINOv3: the RoPE base (periods base^(2i / (D_head/2))) when the weights do not store
    /// `rope_embed.periods`.
    public var ropeBase: Double

    public init(family: Family = .dinov2, embedDim: Int, depth: Int, numHeads: Int?, patchSize: Int, inChannels: Int = 3,
                registerTokens: Int, ffn: FFN, ffnHidden: Int, positionGrid: Int, hasMaskToken: Bool = true,
                maskedKeyBias: Bool = false, qkvBias: Bool = true, untiedClassNorm: Bool = false, ropeBase: Double = 100) {
        self.family = family
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
        self.maskedKeyBias = maskedKeyBias
        self.qkvBias = qkvBias
        self.untiedClassNorm = untiedClassNorm
        self.ropeBase = ropeBase
    }

    /// The hub name when the shape is one of the released variants (`dinov2_vitb14_reg`,
    /// `dinov3_vits16plus`), else nil.
    public var variant: String? {
        switch family {
        case .dinov2:
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
        case .dinov3:
            // hub/backbones.py: MLP ×4, or SwiGLU ×6 (×3 for 7B) with the 2/3 hidden rule.
            guard patchSize == 16, registerTokens == 4 else { return nil }
            switch (embedDim, depth, ffn, ffnHidden) {
            case (384, 12, .mlp, 1536): return "dinov3_vits16"
            case (384, 12, .swiglu, 1536): return "dinov3_vits16plus"
            case (768, 12, .mlp, 3072): return "dinov3_vitb16"
            case (1024, 24, .mlp, 4096): return "dinov3_vitl16"
            case (1024, 24, .swiglu, 4096): return "dinov3_vitl16plus"
            case (1280, 32, .swiglu, 5120): return "dinov3_vith16plus"
            case (4096, 40, .swiglu, 8192): return "dinov3_vit7b16"
            default: return nil
            }
        }
    }

    public var description: String {
        let heads = numHeads.map(String.init) ?? "?"
        let common = "dim \(embedDim), depth \(depth), heads \(heads), patch \(patchSize)"
        switch family {
        case .dinov2:
            return "\(variant ?? "custom") (\(common), registers \(registerTokens), \(ffn.rawValue) \(ffnHidden), grid \(positionGrid)x\(positionGrid))"
        case .dinov3:
            var extras = ["rope"]
            if maskedKeyBias { extras.append("masked k bias") }
            if !qkvBias { extras.append("no qkv bias") }
            if untiedClassNorm { extras.append("untied cls norm") }
            return "\(variant ?? "custom dinov3") (\(common), storage \(registerTokens), \(ffn.rawValue) \(ffnHidden), \(extras.joined(separator: ", ")))"
        }
    }

    /// True when hub-named tensors are a DINOv3 backbone: storage tokens or RoPE periods, or a
    /// backbone without a position table.
    public static func isDINOv3(hubStore store: TensorStore) -> Bool {
        store["storage_tokens"] != nil || store["rope_embed.periods"] != nil
            || (store["pos_embed"] == nil && store["cls_token"] != nil && store["patch_embed.proj.weight"] != nil)
    }

    /// Infers the architecture from hub-named tensors. Throws naming the first tensor that is
    /// missing or whose shape does not fit.
    public static func detect(hubStore store: TensorStore) throws -> BackboneArchitecture {
        func shape(_ name: String) throws -> [Int] {
            guard let t = store[name] else { throw ArchitectureError.missingTensor(name) }
            return t.shape.dims
        }
        let family: Family = isDINOv3(hubStore: store) ? .dinov3 : .dinov2
        let pw = try shape("patch_embed.proj.weight")
        guard pw.count == 4, pw[2] == pw[3], pw[2] > 0 else {
            throw ArchitectureError.badShape(name: "patch_embed.proj.weight", shape: pw, expected: "(D, C, p, p)")
        }
        let d = pw[0], channels = pw[1], p = pw[2]
        var grid = 0
        if family == .dinov2 {
            let pos = try shape("pos_embed")
            guard pos.count == 3, pos[0] == 1, pos[2] == d, pos[1] >= 2 else {
                throw ArchitectureError.badShape(name: "pos_embed", shape: pos, expected: "(1, 1 + M*M, \(d))")
            }
            let n = pos[1] - 1
            grid = Int(Double(n).squareRoot().rounded())
            guard grid * grid == n else {
                throw ArchitectureError.badShape(name: "pos_embed", shape: pos, expected: "(1, 1 + M*M, \(d)) with a square grid")
            }
        }
        let tokensName = family == .dinov2 ? "register_tokens" : "storage_tokens"
        var registers = 0
        if let r = store[tokensName] {
            guard r.shape.rank == 3, r.shape[0] == 1, r.shape[2] == d else {
                throw ArchitectureError.badShape(name: tokensName, shape: r.shape.dims, expected: "(1, R, \(d))")
            }
            registers = r.shape[1]
        }
        var depth = 0
        while store["blocks.\(depth).norm1.weight"] != nil { depth += 1 }
        guard depth > 0 else { throw ArchitectureError.missingTensor("blocks.0.norm1.weight") }
        let (ffn, hidden) = try detectFFN(store, width: d)
        var heads: Int? = nil
        if let s = store.metadata["num_heads"] {
            guard let h = Int(s), h > 0, d % h == 0 else { throw ArchitectureError.badMetadata(key: "num_heads", value: s) }
            heads = h
        } else if d % 64 == 0 {
            heads = d / 64
        }
        var arch = BackboneArchitecture(family: family, embedDim: d, depth: depth, numHeads: heads, patchSize: p,
                                        inChannels: channels, registerTokens: registers, ffn: ffn, ffnHidden: hidden,
                                        positionGrid: grid, hasMaskToken: store["mask_token"] != nil)
        if family == .dinov3 {
            arch.maskedKeyBias = store["blocks.0.attn.qkv.bias_mask"] != nil
            arch.qkvBias = store["blocks.0.attn.qkv.bias"] != nil
            arch.untiedClassNorm = store["cls_norm.weight"] != nil
            // An HF folder's config.json (HFFolder records it as `hf.*` metadata) names the base
            // its periods come from; other layouts store the periods themselves.
            if let text = store.metadata["hf.rope_theta"] {
                guard let base = Double(text), base.isFinite, base > 1 else {
                    throw ArchitectureError.badMetadata(key: "hf.rope_theta", value: String(text.prefix(32)).escapedForMessage)
                }
                arch.ropeBase = base
            }
        }
        return arch
    }

    /// The FFN kind and hidden width from block 0: DINOv2's fused SwiGLU `w12` (2H, D), DINOv3's
    /// separate `w1`/`w2` (H, D) each, or the GELU MLP's `fc1` (H, D).
    private static func detectFFN(_ store: TensorStore, width d: Int) throws -> (FFN, Int) {
        func matrix(_ name: String, rowsEven: Bool = false) throws -> Int {
            guard let t = store[name] else { throw ArchitectureError.missingTensor(name) }
            let s = t.shape.dims
            guard s.count == 2, s[1] == d, s[0] > 0, !rowsEven || s[0] % 2 == 0 else {
                throw ArchitectureError.badShape(name: name, shape: s, expected: rowsEven ? "(2H, \(d))" : "(H, \(d))")
            }
            return s[0]
        }
        if store["blocks.0.mlp.w12.weight"] != nil {
            return (.swiglu, try matrix("blocks.0.mlp.w12.weight", rowsEven: true) / 2)
        }
        if store["blocks.0.mlp.w1.weight"] != nil {
            return (.swiglu, try matrix("blocks.0.mlp.w1.weight"))
        }
        return (.mlp, try matrix("blocks.0.mlp.fc1.weight"))
    }
}

public enum ArchitectureError: Error, CustomStringConvertible, Equatable {
    case missingTensor(String)
    case badShape(name: String, shape: [Int], expected: String)
    case badMetadata(key: String, value: String)

    public var description: String {
        switch self {
        case let .missingTensor(name): return "missing tensor '\(name)' (not a DINOv2/DINOv3 backbone in hub layout?)"
        case let .badShape(name, shape, expected): return "tensor '\(name)' has shape \(shape), expected \(expected)"
        case let .badMetadata(key, value): return "metadata '\(key)' = '\(value)' is not valid"
        }
    }
}
