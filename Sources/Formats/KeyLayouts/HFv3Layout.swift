import TensorStore

/// transformers' `DINOv3ViTModel` names, as the published HF checkpoints carry them on disk
/// (`layer.<i>.…`; transformers 5 renames them to `model.layer.<i>.…` in memory and reads both,
/// as does DinoKit). Differences from the official hub names besides spelling:
/// - q, k and v are separate projections and k has no bias (`key_bias = False`): the official
///   `LinearKMaskedBias` multiplies the key third by 0, so HF drops it. Going to HF the key third
///   and the `bias_mask` are carried in the metadata when they are not the usual (zeros; 1 0 1),
///   coming back they are restored, so hub → HF → hub is bit-identical (`MaskedKeyBias`);
/// - `mask_token` is (1, 1, D) here, (1, D) in the hub layout (the same values);
/// - RoPE periods are not stored (HF computes them from `rope_theta`), nor is the training-only
///   `local_cls_norm`: carried in the metadata (`CarriedTensors`) when DinoKit renders; without
///   them the model computes the periods;
/// - there is no `cls_norm`: untied-norm weights cannot be rendered (`LayoutError.unrepresentable`).
enum HFv3Layout {
    static let embeddings: [(hub: String, hf: String)] = [
        ("cls_token", "embeddings.cls_token"),
        ("mask_token", "embeddings.mask_token"),
        ("storage_tokens", "embeddings.register_tokens"),
        ("patch_embed.proj.weight", "embeddings.patch_embeddings.weight"),
        ("patch_embed.proj.bias", "embeddings.patch_embeddings.bias"),
    ]
    static let final: [(hub: String, hf: String)] = [("norm.weight", "norm.weight"), ("norm.bias", "norm.bias")]

    /// Block parameters that map one to one; the FFN names depend on its kind (see `ffn`).
    static let blockParameters: [(hub: String, hf: String)] = [
        ("norm1.weight", "norm1.weight"), ("norm1.bias", "norm1.bias"),
        ("attn.proj.weight", "attention.o_proj.weight"), ("attn.proj.bias", "attention.o_proj.bias"),
        ("ls1.gamma", "layer_scale1.lambda1"),
        ("norm2.weight", "norm2.weight"), ("norm2.bias", "norm2.bias"),
        ("ls2.gamma", "layer_scale2.lambda1"),
    ]
    /// GELU MLP: fc1 = up_proj, fc2 = down_proj. SwiGLU: w1 = gate_proj, w2 = up_proj, w3 = down_proj.
    static let mlpParameters: [(hub: String, hf: String)] = [("mlp.fc1", "mlp.up_proj"), ("mlp.fc2", "mlp.down_proj")]
    static let swigluParameters: [(hub: String, hf: String)] = [
        ("mlp.w1", "mlp.gate_proj"), ("mlp.w2", "mlp.up_proj"), ("mlp.w3", "mlp.down_proj"),
    ]
    static let qkv = ["attention.q_proj", "attention.k_proj", "attention.v_proj"]

    /// True when `names` are DINOv3 HF names: `layer.<i>.` / `model.layer.<i>.` blocks or the
    /// convolution named without DINOv2's `.projection`.
    static func matches(_ names: [String]) -> Bool {
        names.contains { $0 == "embeddings.patch_embeddings.weight" || layer($0) != nil }
    }

    /// `layer.<i>.<rest>` or `model.layer.<i>.<rest>`, split into its index and rest.
    static func layer(_ name: String) -> (index: Int, rest: String)? {
        let tail: Substring
        if name.hasPrefix("layer.") {
            tail = name.dropFirst("layer.".count)
        } else if name.hasPrefix("model.layer.") {
            tail = name.dropFirst("model.layer.".count)
        } else {
            return nil
        }
        guard let dot = tail.firstIndex(of: "."), let i = LayoutNames.index(tail[..<dot]) else { return nil }
        return (i, String(tail[tail.index(after: dot)...]))
    }

    private static let embeddingToHub = Dictionary(uniqueKeysWithValues: (embeddings + final).map { ($0.hf, $0.hub) })

    static func toHub(_ store: TensorStore) throws -> TensorStore {
        let swiglu = store.names.contains { layer($0)?.rest.hasPrefix("mlp.gate_proj.") == true }
        var blockToHub: [String: String] = [:]
        for (hub, hf) in blockParameters { blockToHub[hf] = hub }
        for (hub, hf) in swiglu ? swigluParameters : mlpParameters {
            blockToHub[hf + ".weight"] = hub + ".weight"
            blockToHub[hf + ".bias"] = hub + ".bias"
        }
        var pairs: [(name: String, tensor: Tensor, source: String)] = []
        var qkvParts: [Int: [String: (name: String, tensor: Tensor)]] = [:]
        var layers: [Int] = []
        for (source, t) in store.tensors {
            if let hub = embeddingToHub[source] {
                pairs.append((hub, hub == "mask_token" ? try TensorSurgery.reshaped(t, to: [1, t.shape.elementCount], name: source) : t, source))
            } else if let (i, rest) = layer(source) {
                if let hubRest = blockToHub[rest] {
                    pairs.append(("blocks.\(i).\(hubRest)", t, source))
                } else if qkv.contains(where: { rest.hasPrefix($0 + ".") }) {
                    if qkvParts[i] == nil { layers.append(i) }
                    qkvParts[i, default: [:]][rest] = (source, t)
                } else {
                    pairs.append((source, t, source))
                }
            } else {
                pairs.append((source, t, source))  // not a backbone name: kept as it is
            }
        }
        for i in layers {
            let parts = qkvParts[i] ?? [:]
            func part(_ base: String, _ kind: String) throws -> (name: String, tensor: Tensor) {
                guard let p = parts[base + "." + kind] else {
                    throw LayoutError.missingTensor(name: "layer.\(i).\(base).\(kind)", needed: "blocks.\(i).attn.qkv.\(kind)")
                }
                return p
            }
            let weights = try qkv.map { try part($0, "weight") }
            for w in weights where w.tensor.shape.rank != 2 {
                throw LayoutError.badTensor(name: w.name, detail: "shape \(w.tensor.shape), expected rank 2")
            }
            pairs.append(("blocks.\(i).attn.qkv.weight", try TensorSurgery.concatenate(weights, axis: 0), weights[0].name))
            // A model without qkv bias (7B) has none of the three.
            guard parts["attention.q_proj.bias"] != nil || parts["attention.v_proj.bias"] != nil else { continue }
            let q = try part(qkv[0], "bias"), v = try part(qkv[2], "bias")
            let (bias, mask) = try MaskedKeyBias.join(q: q, k: parts["attention.k_proj.bias"], v: v, block: i, metadata: store.metadata)
            pairs.append(("blocks.\(i).attn.qkv.bias", bias, q.name))
            pairs.append((MaskedKeyBias.mask(i), mask, q.name))
        }
        for name in CarriedTensors.dinov3Unslotted where store[name] == nil {
            if let t = try CarriedTensors.carried(name, in: store.metadata) { pairs.append((name, t, CarriedTensors.key(name))) }
        }
        return try HubLayout.ordered(.layoutStore(pairs, metadata: CarriedTensors.removingAll(from: store.metadata)))
    }

    static func fromHub(_ hub: TensorStore) throws -> TensorStore {
        let store = try HubLayout.ordered(hub)
        if let name = HubLayout.classNorm.first(where: { store[$0] != nil }) {
            throw LayoutError.unrepresentable(layout: .hf, name: name, reason: "untied cls and patch norms; transformers' DINOv3ViTModel has one final norm")
        }
        let swiglu = store.names.contains { HubLayout.block($0)?.rest.hasPrefix("mlp.w1.") == true }
        var blockToHF: [String: String] = [:]
        for (hub, hf) in blockParameters { blockToHF[hub] = hf }
        for (hub, hf) in swiglu ? swigluParameters : mlpParameters {
            blockToHF[hub + ".weight"] = hf + ".weight"
            blockToHF[hub + ".bias"] = hf + ".bias"
        }
        var metadata = store.metadata
        var pairs: [(name: String, tensor: Tensor, source: String)] = []
        for (h, f) in embeddings {
            guard let t = store[h] else { continue }
            pairs.append((f, h == "mask_token" ? try TensorSurgery.reshaped(t, to: [1, 1, t.shape.elementCount], name: h) : t, h))
        }
        let embedded = Set(embeddings.map(\.hub))
        for (name, t) in store.tensors where !embedded.contains(name) {
            if CarriedTensors.dinov3Unslotted.contains(name) {
                CarriedTensors.carry(t, as: name, in: &metadata)
            } else if let (i, rest) = HubLayout.block(name) {
                let prefix = "layer.\(i)."
                switch rest {
                case "attn.qkv.weight":
                    for (j, part) in try thirds(t, name).enumerated() { pairs.append((prefix + qkv[j] + ".weight", part, name)) }
                case "attn.qkv.bias":
                    let (q, v) = try MaskedKeyBias.split(store, block: i, for: .hf, metadata: &metadata)
                    pairs.append((prefix + qkv[0] + ".bias", q, name))
                    pairs.append((prefix + qkv[2] + ".bias", v, name))
                case "attn.qkv.bias_mask":
                    continue  // carried by split when it is not the usual one
                default:
                    pairs.append((blockToHF[rest].map { prefix + $0 } ?? name, t, name))
                }
            } else {
                pairs.append((final.first { $0.hub == name }?.hf ?? name, t, name))
            }
        }
        return try .layoutStore(pairs, metadata: metadata)
    }

    private static func thirds(_ t: Tensor, _ name: String) throws -> [Tensor] {
        guard t.shape.rank >= 1, t.shape[0] % 3 == 0 else {
            throw LayoutError.badTensor(name: name, detail: "shape \(t.shape), expected 3·D rows")
        }
        let d = t.shape[0] / 3
        return try (0..<3).map { try TensorSurgery.slice(t, ($0 * d)..<(($0 + 1) * d), axis: 0, name: name) }
    }
}
