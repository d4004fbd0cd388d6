import TensorStore

/// HF transformers names (`convert_dinov2_to_hf.py`, dinov2-spec.md §1.12) as HF checkpoints
/// carry them on disk and as `save_pretrained` writes them in every transformers version. Reading
/// also accepts the names transformers 5 uses in memory (`attention.q_proj`, `mlp.gate_proj` +
/// `mlp.up_proj`, ...), in case someone saved a `state_dict()` directly. The classification
/// model's `dinov2.` prefix is removed.
enum HFLayout {
    /// Embedding tensors in transformers' module order, and the final norm.
    static let embeddings: [(hub: String, hf: String)] = [
        ("cls_token", "embeddings.cls_token"),
        ("mask_token", "embeddings.mask_token"),
        ("pos_embed", "embeddings.position_embeddings"),
        ("register_tokens", "embeddings.register_tokens"),
        ("patch_embed.proj.weight", "embeddings.patch_embeddings.projection.weight"),
        ("patch_embed.proj.bias", "embeddings.patch_embeddings.projection.bias"),
    ]
    static let final: [(hub: String, hf: String)] = [("norm.weight", "layernorm.weight"), ("norm.bias", "layernorm.bias")]

    /// Block parameters other than q/k/v: hub name -> HF names (the on-disk one first).
    static let blockParameters: [(hub: String, hf: [String])] = [
        ("norm1.weight", ["norm1.weight"]), ("norm1.bias", ["norm1.bias"]),
        ("attn.proj.weight", ["attention.output.dense.weight", "attention.o_proj.weight"]),
        ("attn.proj.bias", ["attention.output.dense.bias", "attention.o_proj.bias"]),
        ("ls1.gamma", ["layer_scale1.lambda1"]),
        ("norm2.weight", ["norm2.weight"]), ("norm2.bias", ["norm2.bias"]),
        ("mlp.fc1.weight", ["mlp.fc1.weight"]), ("mlp.fc1.bias", ["mlp.fc1.bias"]),
        ("mlp.fc2.weight", ["mlp.fc2.weight"]), ("mlp.fc2.bias", ["mlp.fc2.bias"]),
        ("mlp.w12.weight", ["mlp.weights_in.weight"]), ("mlp.w12.bias", ["mlp.weights_in.bias"]),
        ("mlp.w3.weight", ["mlp.weights_out.weight", "mlp.down_proj.weight"]),
        ("mlp.w3.bias", ["mlp.weights_out.bias", "mlp.down_proj.bias"]),
        ("ls2.gamma", ["layer_scale2.lambda1"]),
    ]
    /// The three row blocks of `attn.qkv` (Q rows first, then K, then V), on-disk names first.
    static let qkvParts = [
        ["attention.attention.query", "attention.attention.key", "attention.attention.value"],
        ["attention.q_proj", "attention.k_proj", "attention.v_proj"],
    ]
    /// transformers 5 splits SwiGLU's `weights_in` into these halves (gate = first rows).
    static let swigluParts = ["mlp.gate_proj", "mlp.up_proj"]

    private static let embeddingToHub = Dictionary(uniqueKeysWithValues: (embeddings + final).map { ($0.hf, $0.hub) })
    private static let blockToHub: [String: String] = {
        var m: [String: String] = [:]
        for (hub, hfs) in blockParameters { for hf in hfs { m[hf] = hub } }
        return m
    }()
    private static let blockToHF = Dictionary(uniqueKeysWithValues: blockParameters.map { ($0.hub, $0.hf[0]) })
    private static let finalToHF = Dictionary(uniqueKeysWithValues: final.map { ($0.hub, $0.hf) })

    /// True when `names` look like an HF DINOv2 checkpoint.
    static func matches(_ names: [String]) -> Bool {
        names.contains { n in
            let m = n.hasPrefix("dinov2.") ? String(n.dropFirst("dinov2.".count)) : n
            return m.hasPrefix("embeddings.") || m.hasPrefix("encoder.layer.")
        }
    }

    /// `encoder.layer.<i>.<rest>` split into its index and rest.
    static func layer(_ name: String) -> (index: Int, rest: String)? {
        guard name.hasPrefix("encoder.layer.") else { return nil }
        let tail = name.dropFirst("encoder.layer.".count)
        guard let dot = tail.firstIndex(of: "."), let i = LayoutNames.index(tail[..<dot]) else { return nil }
        return (i, String(tail[tail.index(after: dot)...]))
    }

    /// Which joined hub tensor an HF piece belongs to, and its slot in the join.
    private static func piece(_ rest: String) -> (hub: String, slot: Int, slots: Int)? {
        for kind in ["weight", "bias"] {
            for family in qkvParts {
                for (slot, base) in family.enumerated() where rest == "\(base).\(kind)" {
                    return ("attn.qkv.\(kind)", slot, 3)
                }
            }
            for (slot, base) in swigluParts.enumerated() where rest == "\(base).\(kind)" {
                return ("mlp.w12.\(kind)", slot, 2)
            }
        }
        return nil
    }

    static func toHub(_ store: TensorStore) throws -> TensorStore {
        let prefixed = store.names.contains { $0.hasPrefix("dinov2.") }
        var pairs: [(name: String, tensor: Tensor, source: String)] = []
        var groups: [String: [Int: (name: String, tensor: Tensor)]] = [:]
        var groupOrder: [(hub: String, slots: Int, layer: Int, rest: String)] = []
        for (source, t) in store.tensors {
            let name = prefixed && source.hasPrefix("dinov2.") ? String(source.dropFirst("dinov2.".count)) : source
            if let hub = embeddingToHub[name] {
                pairs.append((hub, t, source))
                continue
            }
            if let (i, rest) = layer(name) {
                if let hubRest = blockToHub[rest] {
                    pairs.append(("blocks.\(i).\(hubRest)", t, source))
                    continue
                }
                if let p = piece(rest) {
                    let key = "blocks.\(i).\(p.hub)"
                    if groups[key] == nil { groupOrder.append((key, p.slots, i, p.hub)) }
                    if let earlier = groups[key]?[p.slot] {
                        throw LayoutError.collision(name: key, sources: [earlier.name, source])
                    }
                    groups[key, default: [:]][p.slot] = (source, t)
                    continue
                }
            }
            pairs.append((source, t, source))  // not a DINOv2 backbone name: kept as it is
        }
        for (key, slots, i, hubRest) in groupOrder {
            let kind = hubRest.hasSuffix(".weight") ? "weight" : "bias"
            var parts: [(name: String, tensor: Tensor)] = []
            for s in 0..<slots {
                guard let p = groups[key]?[s] else {
                    let base = slots == 3 ? qkvParts[0][s] : swigluParts[s]
                    throw LayoutError.missingTensor(name: "encoder.layer.\(i).\(base).\(kind)", needed: key)
                }
                parts.append(p)
            }
            let rank = kind == "weight" ? 2 : 1
            for p in parts where p.tensor.shape.rank != rank {
                throw LayoutError.badTensor(name: p.name, detail: "shape \(p.tensor.shape), expected rank \(rank)")
            }
            pairs.append((key, try TensorSurgery.concatenate(parts, axis: 0), parts[0].name))
        }
        return try HubLayout.ordered(.layoutStore(pairs, metadata: store.metadata))
    }

    static func fromHub(_ hub: TensorStore) throws -> TensorStore {
        let store = try HubLayout.ordered(hub)
        var pairs: [(name: String, tensor: Tensor, source: String)] = []
        var done = Set<String>()
        for (h, f) in embeddings {
            if let t = store[h] {
                pairs.append((f, t, h))
                done.insert(h)
            }
        }
        for (name, t) in store.tensors where !done.contains(name) {
            if let f = finalToHF[name] {
                pairs.append((f, t, name))
            } else if let (i, rest) = HubLayout.block(name) {
                let prefix = "encoder.layer.\(i)."
                if rest == "attn.qkv.weight" || rest == "attn.qkv.bias" {
                    // transformers' order: each projection's weight, then its bias.
                    let kinds = rest == "attn.qkv.weight" && store["blocks.\(i).attn.qkv.bias"] != nil
                        ? ["weight", "bias"] : [String(rest.dropFirst("attn.qkv.".count))]
                    let thirds = try kinds.map { try splitQKV(store, "blocks.\(i).attn.qkv.\($0)") }
                    for (s, base) in qkvParts[0].enumerated() {
                        for (k, kind) in kinds.enumerated() {
                            pairs.append((prefix + "\(base).\(kind)", thirds[k][s], "blocks.\(i).attn.qkv.\(kind)"))
                        }
                    }
                    kinds.forEach { done.insert("blocks.\(i).attn.qkv.\($0)") }
                } else if let f = blockToHF[rest] {
                    pairs.append((prefix + f, t, name))
                } else {
                    pairs.append((name, t, name))
                }
            } else {
                pairs.append((name, t, name))
            }
        }
        return try .layoutStore(pairs, metadata: store.metadata)
    }

    /// Q, K, V row blocks of a fused qkv weight (3D, D) or bias (3D), as views.
    private static func splitQKV(_ store: TensorStore, _ name: String) throws -> [Tensor] {
        guard let t = store[name] else { throw LayoutError.missingTensor(name: name, needed: "the q/k/v split") }
        let rank = name.hasSuffix(".weight") ? 2 : 1
        guard t.shape.rank == rank, t.shape[0] % 3 == 0 else {
            throw LayoutError.badTensor(name: name, detail: "shape \(t.shape), expected rank \(rank) with 3·D rows")
        }
        let d = t.shape[0] / 3
        return try (0..<3).map { try TensorSurgery.slice(t, ($0 * d)..<(($0 + 1) * d), axis: 0, name: name) }
    }
}
