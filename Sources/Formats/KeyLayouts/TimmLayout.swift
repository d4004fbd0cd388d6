import TensorStore

/// timm names (`timm/models/vision_transformer.py` `_convert_dinov2`, dinov2-spec.md §1.13): hub
/// names without `mask_token`; SwiGLU `mlp.w12`/`mlp.w3` become `mlp.fc1`/`mlp.fc2`; register models
/// (`no_embed_class`) get `reg_token`, `cls_token + pos_embed[:, 0]` as `cls_token`, and
/// `pos_embed[:, 1:]`.
///
/// Two hub values have no slot in a timm file: `mask_token`, and — for register models — how the
/// folded `cls_token` splits into `cls_token` and `pos_embed[:, 0]` (a float sum cannot be undone
/// exactly). DinoKit keeps both:
/// - Writing (render): the original `mask_token`, `cls_token` and `pos_embed[:, 0]` go into the
///   store's metadata (`dinokit.hub.*`, see `CarriedTensors`), which a safetensors file keeps in
///   `__metadata__`. timm ignores it, so the file still loads strictly in timm, and hub → timm →
///   hub is bit-identical.
/// - Reading (canonicalize): when those entries are present and the stored pair folds to exactly
///   the file's `cls_token`, they are restored. Otherwise (a timm-made file, or one whose weights
///   changed since DinoKit wrote it) the rule is `cls_token` = timm's `cls_token` and
///   `pos_embed[:, 0]` = 0: the official model adds `cls_token + pos_embed[:, 0]` = timm's value + 0,
///   which is timm's value exactly, so outputs are identical at every input size (the cls row is
///   never interpolated). Metadata `dinokit.cls_pos_fold` says which happened (`restored` /
///   `zero-row`); a missing mask token is recorded as `dinokit.mask_token` = `absent`.
enum TimmLayout {
    static let maskTokenKey = CarriedTensors.key("mask_token")
    static let clsTokenKey = CarriedTensors.key("cls_token")
    static let posRow0Key = CarriedTensors.key("pos_embed.row0")
    static let foldKey = "dinokit.cls_pos_fold"
    static let maskStatusKey = "dinokit.mask_token"

    /// SwiGLU packed in timm's GluMlp: fc1 holds both halves, so fc2's input width is half of fc1's
    /// output width (a plain MLP has them equal).
    private static func isPackedSwiGLU(_ store: TensorStore, block i: Int) -> Bool {
        guard let fc1 = store["blocks.\(i).mlp.fc1.weight"], let fc2 = store["blocks.\(i).mlp.fc2.weight"],
              fc1.shape.rank == 2, fc2.shape.rank == 2 else { return false }
        return fc1.shape[0] == 2 * fc2.shape[1]
    }

    static func toHub(_ store: TensorStore) throws -> TensorStore {
        var metadata = store.metadata
        for key in [maskTokenKey, clsTokenKey, posRow0Key] { metadata.removeValue(forKey: key) }
        var pairs: [(name: String, tensor: Tensor, source: String)] = []
        let registers = store["reg_token"] != nil
        for (name, t) in store.tensors {
            switch name {
            case "reg_token":
                pairs.append(("register_tokens", t, name))
            case "cls_token" where registers, "pos_embed" where registers:
                continue  // rebuilt below
            default:
                if let (i, rest) = HubLayout.block(name), rest.hasPrefix("mlp.fc"), isPackedSwiGLU(store, block: i) {
                    let hubRest = rest.replacingPrefix("mlp.fc1.", with: "mlp.w12.").replacingPrefix("mlp.fc2.", with: "mlp.w3.")
                    pairs.append(("blocks.\(i).\(hubRest)", t, name))
                } else {
                    pairs.append((name, t, name))
                }
            }
        }
        if registers {
            let (cls, pos, how) = try unfold(store)
            pairs.append(("cls_token", cls, "cls_token"))
            pairs.append(("pos_embed", pos, "pos_embed"))
            metadata[foldKey] = how
        }
        if store["mask_token"] == nil {
            if let m = try restoredMaskToken(store) {
                pairs.append(("mask_token", m, maskTokenKey))
            } else {
                metadata[maskStatusKey] = "absent"
            }
        }
        return try HubLayout.ordered(.layoutStore(pairs, metadata: metadata))
    }

    /// The mask token carried in a timm file's metadata when it fits the model (cls_token's dtype
    /// and width); nil when none is carried or it does not fit (the weights changed since).
    static func restoredMaskToken(_ store: TensorStore) throws -> Tensor? {
        guard let m = try CarriedTensors.carried("mask_token", in: store.metadata) else { return nil }
        guard let cls = store["cls_token"], cls.shape.rank == 3, m.shape == Shape([1, cls.shape[2]]), m.dtype == cls.dtype else { return nil }
        return m
    }

    /// The hub `cls_token` and full `pos_embed` of a register model, and which rule gave them.
    private static func unfold(_ store: TensorStore) throws -> (Tensor, Tensor, String) {
        guard let folded = store["cls_token"] else { throw LayoutError.missingTensor(name: "cls_token", needed: "a timm register model") }
        guard let patchPos = store["pos_embed"] else { throw LayoutError.missingTensor(name: "pos_embed", needed: "a timm register model") }
        guard folded.shape.rank == 3, folded.shape[0] == 1, folded.shape[1] == 1 else {
            throw LayoutError.badTensor(name: "cls_token", detail: "shape \(folded.shape), expected (1, 1, D)")
        }
        let d = folded.shape[2]
        guard patchPos.shape.rank == 3, patchPos.shape[0] == 1, patchPos.shape[2] == d, patchPos.dtype == folded.dtype else {
            throw LayoutError.badTensor(name: "pos_embed", detail: "\(patchPos.dtype) \(patchPos.shape), expected \(folded.dtype) (1, N, \(d))")
        }
        var cls = folded
        var row0 = try TensorSurgery.zeros(like: folded, shape: [1, 1, d])
        var how = "zero-row"
        if let clsText = store.metadata[clsTokenKey], let rowText = store.metadata[posRow0Key] {
            let c = try MetadataTensor.decode(clsText, key: clsTokenKey)
            let r = try MetadataTensor.decode(rowText, key: posRow0Key)
            if c.dtype == folded.dtype, c.shape == folded.shape, r.dtype == folded.dtype, r.shape == folded.shape,
               try TensorSurgery.add(c, r, names: (clsTokenKey, posRow0Key)).bitwiseEqual(folded) {
                cls = c
                row0 = r
                how = "restored"
            }
        }
        let pos = try TensorSurgery.concatenate([("pos_embed[:, 0]", row0), ("pos_embed", patchPos)], axis: 1)
        return (cls, pos, how)
    }

    static func fromHub(_ hub: TensorStore) throws -> TensorStore {
        let store = try HubLayout.ordered(hub)
        var metadata = store.metadata
        for key in [foldKey, maskStatusKey] { metadata.removeValue(forKey: key) }
        metadata["format"] = metadata["format"] ?? "pt"
        var pairs: [(name: String, tensor: Tensor, source: String)] = []
        if let m = store["mask_token"] { CarriedTensors.carry(m, as: "mask_token", in: &metadata) }
        if let reg = store["register_tokens"] {
            guard let cls = store["cls_token"], let pos = store["pos_embed"] else {
                throw LayoutError.missingTensor(name: store["cls_token"] == nil ? "cls_token" : "pos_embed", needed: "timm's register layout")
            }
            guard pos.shape.rank == 3, pos.shape[0] == 1, pos.shape[1] >= 1, cls.shape == Shape([1, 1, pos.shape[2]]) else {
                throw LayoutError.badTensor(name: "pos_embed", detail: "shape \(pos.shape) with cls_token \(cls.shape), expected (1, 1+N, D) and (1, 1, D)")
            }
            let row0 = try TensorSurgery.slice(pos, 0..<1, axis: 1, name: "pos_embed")
            let rest = try TensorSurgery.slice(pos, 1..<pos.shape[1], axis: 1, name: "pos_embed")
            // timm's module order: cls_token, reg_token, pos_embed.
            pairs.append(("cls_token", try TensorSurgery.add(cls, row0, names: ("cls_token", "pos_embed[:, 0]")), "cls_token"))
            pairs.append(("reg_token", reg, "register_tokens"))
            pairs.append(("pos_embed", rest, "pos_embed"))
            CarriedTensors.carry(cls, as: "cls_token", in: &metadata)
            CarriedTensors.carry(row0, as: "pos_embed.row0", in: &metadata)
        }
        let handled: Set<String> = store["register_tokens"] != nil ? ["cls_token", "pos_embed", "register_tokens", "mask_token"] : ["mask_token"]
        for (name, t) in store.tensors where !handled.contains(name) {
            if let (i, rest) = HubLayout.block(name), rest.hasPrefix("mlp.w") {
                let timmRest = rest.replacingPrefix("mlp.w12.", with: "mlp.fc1.").replacingPrefix("mlp.w3.", with: "mlp.fc2.")
                pairs.append(("blocks.\(i).\(timmRest)", t, name))
            } else {
                pairs.append((name, t, name))
            }
        }
        return try .layoutStore(pairs, metadata: metadata)
    }
}

fileprivate extension String {
    func replacingPrefix(_ prefix: String, with replacement: String) -> String {
        hasPrefix(prefix) ? replacement + dropFirst(prefix.count) : self
    }
}
