import OrderedCollections
import TensorStore

/// `config.json` of a transformers DINOv2 folder: read into flat metadata, written from a
/// backbone architecture with exactly the fields `Dinov2Config` / `Dinov2WithRegistersConfig`
/// take (transformers 5 validates their types strictly: `mlp_ratio` must be an integer).
enum HFConfig {
    /// Largest config.json DinoKit reads (real ones are ~1 KB).
    static let maxBytes = 1 << 20

    /// Top-level scalar fields as text (numbers as written, booleans `true`/`false`), and arrays
    /// of strings joined with commas; nested objects and null are skipped.
    static func read(path: String) throws -> OrderedDictionary<String, String> {
        let file = try MappedFile(path: path)
        guard file.count <= maxBytes else { throw HFFolderError.badConfig(path: path, reason: "\(file.count) bytes, more than \(maxBytes)") }
        if let bad = JSONReader.firstInvalidUTF8Offset(file.bytes) {
            throw HFFolderError.badConfig(path: path, reason: "invalid UTF-8 at byte \(bad)")
        }
        var fields: OrderedDictionary<String, String> = [:]
        var r = JSONReader(file.bytes)
        do {
            var object = try r.beginObject()
            while let key = try r.nextKey(&object) {
                guard fields[key] == nil else { throw HFFolderError.badConfig(path: path, reason: "duplicate key '\(key.escapedForMessage)'") }
                switch try r.peekKind() {
                case .string: fields[key] = try r.readString()
                case .bool: fields[key] = try r.readBool() ? "true" : "false"
                case .number:
                    switch try r.readNumber() {
                    case let .unsigned(v): fields[key] = String(v)
                    case let .other(text): fields[key] = text
                    }
                case .array:
                    var items: [String] = []
                    var allStrings = true
                    var a = try r.beginArray()
                    while try r.nextElement(&a) {
                        if try r.peekKind() == .string { items.append(try r.readString()) } else { allStrings = false; try r.skipValue() }
                    }
                    if allStrings { fields[key] = items.joined(separator: ",") }
                case .object, .null:
                    try r.skipValue()
                }
            }
            try r.finish()
        } catch let e as JSONReader.SyntaxError {
            throw HFFolderError.badConfig(path: path, reason: "\(e.message) at byte \(e.offset)")
        }
        return fields
    }

    /// The integer `mlp_ratio` that makes transformers build this FFN: `int(D * r)` hidden units
    /// for the GELU MLP; for SwiGLU `(int(int(D * r) * 2 / 3) + 7) // 8 * 8` (Dinov2SwiGLUFFN).
    static func mlpRatio(_ arch: BackboneArchitecture) -> Int? {
        let d = arch.embedDim
        switch arch.ffn {
        case .mlp:
            return arch.ffnHidden % d == 0 && arch.ffnHidden > 0 ? arch.ffnHidden / d : nil
        case .swiglu:
            for r in 1...16 {
                let hidden = d * r
                let third = Int((Double(hidden) * 2 / 3).rounded(.towardZero))
                if (third + 7) / 8 * 8 == arch.ffnHidden { return r }
            }
            return nil
        }
    }

    static func json(_ arch: BackboneArchitecture, heads: Int, dtype: DType, hasMaskToken: Bool) throws -> String {
        if arch.family == .dinov3 { return dinov3JSON(arch, heads: heads, dtype: dtype) }
        guard let ratio = mlpRatio(arch) else {
            throw HFFolderError.unsupported(reason: "\(arch.ffn.rawValue) FFN with \(arch.ffnHidden) hidden units for width \(arch.embedDim) has no integer mlp_ratio, which transformers' config requires")
        }
        let registers = arch.registerTokens > 0
        // Sorted keys, two-space indent: what transformers' save_pretrained writes.
        var fields: [(String, String)] = [
            ("apply_layernorm", "true"),
            ("architectures", "[\n    \"\(registers ? "Dinov2WithRegistersModel" : "Dinov2Model")\"\n  ]"),
            ("attention_probs_dropout_prob", "0.0"),
            ("drop_path_rate", "0.0"),
            ("dtype", "\"\(dtypeName(dtype))\""),
            ("hidden_act", "\"gelu\""),
            ("hidden_dropout_prob", "0.0"),
            ("hidden_size", "\(arch.embedDim)"),
            ("image_size", "\(arch.patchSize * arch.positionGrid)"),
            ("initializer_range", "0.02"),
            ("layer_norm_eps", "1e-06"),
            ("layerscale_value", "1.0"),
            ("mlp_ratio", "\(ratio)"),
            ("model_type", registers ? "\"dinov2_with_registers\"" : "\"dinov2\""),
            ("num_attention_heads", "\(heads)"),
            ("num_channels", "\(arch.inChannels)"),
            ("num_hidden_layers", "\(arch.depth)"),
            ("patch_size", "\(arch.patchSize)"),
            ("qkv_bias", "true"),
            ("reshape_hidden_states", "true"),
            ("use_swiglu_ffn", arch.ffn == .swiglu ? "true" : "false"),
        ]
        if registers {
            fields.append(("num_register_tokens", "\(arch.registerTokens)"))
        } else {
            // Dinov2Model only: without a mask token the parameter is not created at all.
            fields.append(("use_mask_token", hasMaskToken ? "true" : "false"))
        }
        fields.sort { $0.0 < $1.0 }
        return "{\n" + fields.map { "  \"\($0.0)\": \($0.1)" }.joined(separator: ",\n") + "\n}\n"
    }
}
