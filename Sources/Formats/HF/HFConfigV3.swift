import TensorStore

extension HFConfig {
    /// `config.json` for transformers' `DINOv3ViTModel`, the fields `save_pretrained` writes
    /// (sorted, two-space indent; the backbone-only `out_features`/`stage_names` left to their
    /// defaults). The key bias is off (`key_bias: false`, the official mask removes it);
    /// `query_bias`/`value_bias` follow the weights (7B has none); a gated MLP is SwiGLU with
    /// `silu`. `rope_theta` is the base the model computes its periods from.
    static func dinov3JSON(_ arch: BackboneArchitecture, heads: Int, dtype: DType) -> String {
        let swiglu = arch.ffn == .swiglu
        var fields: [(String, String)] = [
            ("apply_layernorm", "true"),
            ("architectures", "[\n    \"DINOv3ViTModel\"\n  ]"),
            ("attention_dropout", "0.0"),
            ("drop_path_rate", "0.0"),
            ("dtype", "\"\(dtypeName(dtype))\""),
            ("hidden_act", swiglu ? "\"silu\"" : "\"gelu\""),
            ("hidden_size", "\(arch.embedDim)"),
            ("image_size", "224"),
            ("initializer_range", "0.02"),
            ("intermediate_size", "\(arch.ffnHidden)"),
            ("key_bias", "false"),
            ("layer_norm_eps", "1e-05"),
            ("layerscale_value", "1.0"),
            ("mlp_bias", "true"),
            ("model_type", "\"dinov3_vit\""),
            ("num_attention_heads", "\(heads)"),
            ("num_channels", "\(arch.inChannels)"),
            ("num_hidden_layers", "\(arch.depth)"),
            ("num_register_tokens", "\(arch.registerTokens)"),
            ("patch_size", "\(arch.patchSize)"),
            ("pos_embed_jitter", "null"),
            ("pos_embed_rescale", "2.0"),
            ("pos_embed_shift", "null"),
            ("proj_bias", "true"),
            ("query_bias", arch.qkvBias ? "true" : "false"),
            ("reshape_hidden_states", "true"),
            ("rope_theta", ropeTheta(arch.ropeBase)),
            ("use_gated_mlp", swiglu ? "true" : "false"),
            ("value_bias", arch.qkvBias ? "true" : "false"),
        ]
        fields.sort { $0.0 < $1.0 }
        return "{\n" + fields.map { "  \"\($0.0)\": \($0.1)" }.joined(separator: ",\n") + "\n}\n"
    }

    /// transformers writes the base as a float (`100.0`).
    private static func ropeTheta(_ base: Double) -> String {
        base == base.rounded() && abs(base) < 1e15 ? "\(Int(base)).0" : "\(base)"
    }

    static func dtypeName(_ dtype: DType) -> String {
        switch dtype {
        case .f16: return "float16"
        case .bf16: return "bfloat16"
        case .f64: return "float64"
        default: return "float32"
        }
    }
}
