import OrderedCollections
import TensorStore

/// timm's DINOv3 names (`vit_*_patch16_dinov3[_qkvb]`, an `Eva`; `timm/models/eva.py`
/// `checkpoint_filter_fn`): `storage_tokens` is `reg_token`, LayerScale is `gamma_1` / `gamma_2`,
/// SwiGLU's `w1` / `w2` / `w3` are `fc1_g` / `fc1_x` / `fc2`, and the qkv bias is `q_bias` and
/// `v_bias` (the key bias is a zero buffer). Told from DINOv2's timm names (`VisionTransformer`:
/// `ls1.gamma`, a `pos_embed` always) by those Eva block names, or by `reg_token` without `pos_embed`.
///
/// Hub values timm has no slot for are carried in the metadata when DinoKit renders
/// (`CarriedTensors`) and restored on reading, so hub → timm → hub is bit-identical through a
/// safetensors file: `mask_token`, `rope_embed.periods`, `local_cls_norm.*` (training only), and
/// the key third of the qkv bias and its `bias_mask` unless they are the usual ones
/// (`MaskedKeyBias`). A timm-made file has none of it: the mask token is absent
/// (`dinokit.mask_token` = `absent`, as `TimmLayout`), the key bias zeros with the (1, 0, 1) mask —
/// what timm computes — and the periods absent (the model computes them from base 100, as timm
/// itself recomputes them). An untied `cls_norm` changes the outputs and Eva has one final norm:
/// rendering refuses it.
enum TimmV3Layout {
    /// Hub block parameters renamed one to one (the rest keep their names).
    static let blockNames: [(hub: String, timm: String)] = [("ls1.gamma", "gamma_1"), ("ls2.gamma", "gamma_2")]
    /// SwiGLU's separate projections, by name prefix: gate, up, down.
    static let swigluNames: [(hub: String, timm: String)] = [("mlp.w1.", "mlp.fc1_g."), ("mlp.w2.", "mlp.fc1_x."), ("mlp.w3.", "mlp.fc2.")]
    static let qvBias = ["attn.q_bias", "attn.v_bias"]
    /// Whole hub tensors timm has no slot for (and `mask_token`, restored as `TimmLayout` does).
    static let carried = CarriedTensors.dinov3Unslotted

    /// True when backbone names (`prepared`, with `set` their set) are timm's DINOv3 names.
    static func matches(_ names: [String], _ set: Set<String>) -> Bool {
        guard !set.contains("pos_embed") else { return false }
        return set.contains("reg_token") || names.contains { name in
            name.hasPrefix("blocks.") && (name.hasSuffix(".gamma_1") || name.hasSuffix(".attn.q_bias"))
        }
    }

    static func toHub(_ store: TensorStore) throws -> TensorStore {
        let swigluBlocks = Set(store.names.compactMap { n in HubLayout.block(n).flatMap { $0.rest.hasPrefix("mlp.fc1_g.") ? $0.index : nil } })
        var pairs: [(name: String, tensor: Tensor, source: String)] = []
        var biases: [Int: [String: (name: String, tensor: Tensor)]] = [:]
        var biasBlocks: [Int] = []
        for (name, t) in store.tensors {
            if name == "reg_token" {
                pairs.append(("storage_tokens", t, name))
            } else if let (i, rest) = HubLayout.block(name) {
                if qvBias.contains(rest) {
                    if biases[i] == nil { biasBlocks.append(i) }
                    biases[i, default: [:]][rest] = (name, t)
                } else {
                    pairs.append(("blocks.\(i).\(hubRest(rest, swiglu: swigluBlocks.contains(i)))", t, name))
                }
            } else {
                pairs.append((name, t, name))
            }
        }
        for i in biasBlocks {
            let parts = try qvBias.map { rest -> (name: String, tensor: Tensor) in
                guard let p = biases[i]?[rest] else {
                    throw LayoutError.missingTensor(name: "blocks.\(i).\(rest)", needed: "blocks.\(i).attn.qkv.bias")
                }
                return p
            }
            let (bias, mask) = try MaskedKeyBias.join(q: parts[0], k: nil, v: parts[1], block: i, metadata: store.metadata)
            pairs.append(("blocks.\(i).attn.qkv.bias", bias, parts[0].name))
            pairs.append((MaskedKeyBias.mask(i), mask, parts[0].name))
        }
        for name in carried where store[name] == nil {
            if let t = try CarriedTensors.carried(name, in: store.metadata) { pairs.append((name, t, CarriedTensors.key(name))) }
        }
        var metadata = store.metadata
        if store["mask_token"] == nil {
            if let m = try TimmLayout.restoredMaskToken(store) {
                pairs.append(("mask_token", m, CarriedTensors.key("mask_token")))
            } else {
                metadata[TimmLayout.maskStatusKey] = "absent"
            }
        }
        return try HubLayout.ordered(.layoutStore(pairs, metadata: CarriedTensors.removingAll(from: metadata)))
    }

    static func fromHub(_ hub: TensorStore) throws -> TensorStore {
        let store = try HubLayout.ordered(hub)
        if let name = HubLayout.classNorm.first(where: { store[$0] != nil }) {
            throw LayoutError.unrepresentable(layout: .timm, name: name, reason: "untied cls and patch norms; timm's Eva has one final norm")
        }
        var metadata = store.metadata
        metadata.removeValue(forKey: TimmLayout.maskStatusKey)
        metadata["format"] = metadata["format"] ?? "pt"
        var pairs: [(name: String, tensor: Tensor, source: String)] = []
        for (name, t) in store.tensors {
            if name == "storage_tokens" {
                pairs.append(("reg_token", t, name))
            } else if name == "mask_token" || carried.contains(name) {
                CarriedTensors.carry(t, as: name, in: &metadata)
            } else if let (i, rest) = HubLayout.block(name) {
                switch rest {
                case "attn.qkv.bias":
                    let (q, v) = try MaskedKeyBias.split(store, block: i, for: .timm, metadata: &metadata)
                    pairs.append(("blocks.\(i).attn.q_bias", q, name))
                    pairs.append(("blocks.\(i).attn.v_bias", v, name))
                case "attn.qkv.bias_mask":
                    continue  // carried by split when it is not the usual one
                default:
                    pairs.append(("blocks.\(i).\(timmRest(rest))", t, name))
                }
            } else {
                pairs.append((name, t, name))
            }
        }
        return try .layoutStore(pairs, metadata: metadata)
    }

    /// A hub block parameter's timm name (without `blocks.<i>.`).
    private static func timmRest(_ rest: String) -> String {
        if let m = blockNames.first(where: { $0.hub == rest }) { return m.timm }
        if let m = swigluNames.first(where: { rest.hasPrefix($0.hub) }) { return m.timm + rest.dropFirst(m.hub.count) }
        return rest
    }

    /// A timm block parameter's hub name; `fc2` is SwiGLU's `w3` only in a block with `fc1_g`.
    private static func hubRest(_ rest: String, swiglu: Bool) -> String {
        if let m = blockNames.first(where: { $0.timm == rest }) { return m.hub }
        if swiglu, let m = swigluNames.first(where: { rest.hasPrefix($0.timm) }) { return m.hub + rest.dropFirst(m.timm.count) }
        return rest
    }
}
