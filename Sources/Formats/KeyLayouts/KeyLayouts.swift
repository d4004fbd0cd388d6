import TensorStore

/// Detection and translation of DINOv2 and DINOv3 key layouts. Inside DinoKit every backbone uses the
/// torch-hub names (`HubLayout`); the other layouts are translated at the edges, both ways,
/// without changing a single bit of any value (timm register models: see `TimmLayout`).
///
/// Names the tables do not know (a classifier head, extra buffers) are kept as they are and placed
/// after the backbone, except in training checkpoints, where only the chosen backbone is taken
/// (heads, loss centers and optimizer state are dropped). Wrapper components (`module.`,
/// `_fsdp_wrapped_module.`, `_orig_mod.`) are ignored everywhere, and a `model.` / `state_dict.`
/// prefix that every name shares is removed.
public enum KeyLayouts {
    /// Which layout a store's names are in, by characteristic names.
    public static func detect(_ store: TensorStore) -> Layout {
        let names = prepared(store.names)
        if names.isEmpty { return .unknown }
        if TrainingLayout.matches(names) { return .training }
        if HFv3Layout.matches(names) || HFLayout.matches(names) { return .hf }
        let set = Set(names)
        let hasBackbone = set.contains("patch_embed.proj.weight") || set.contains("cls_token")
            || names.contains { $0.hasSuffix(".attn.qkv.weight") && HubLayout.block($0)?.rest == "attn.qkv.weight" }
        guard hasBackbone else { return .unknown }
        if set.contains("reg_token") || TimmV3Layout.matches(names, set) { return .timm }
        if !set.contains("mask_token"), set.contains("cls_token") { return .timm }
        return .hub
    }

    /// Translates `store` to hub names in hub order, returning the layout it was in. Training
    /// checkpoints give the `which` backbone (teacher by default, as DINOv2 evaluates), with the
    /// chunk index of `blocks.<k>.<i>` removed. Metadata is kept; DinoKit notes what it could not
    /// recover (`dinokit.mask_token` = `absent`, `dinokit.cls_pos_fold`).
    public static func canonicalize(_ store: TensorStore, which: TrainingBranch = .teacher) throws -> (store: TensorStore, layout: Layout) {
        try canonicalize(store, detected: detect(store), which: which)
    }

    /// `canonicalize` for a caller that already ran `detect(store)` (inspect, convert): the
    /// layout it found, so the names are not classified twice.
    public static func canonicalize(_ store: TensorStore, detected layout: Layout, which: TrainingBranch = .teacher) throws -> (store: TensorStore, layout: Layout) {
        switch layout {
        case .training:
            return (try TrainingLayout.toHub(store, which: which).store, layout)
        case .hf:
            let prepared = try preparing(store)
            let hub = HFv3Layout.matches(prepared.names) ? try HFv3Layout.toHub(prepared) : try HFLayout.toHub(prepared)
            return (hub, layout)
        case .timm:
            let prepared = try preparing(store)
            let v3 = TimmV3Layout.matches(prepared.names, Set(prepared.names))
            return (v3 ? try TimmV3Layout.toHub(prepared) : try TimmLayout.toHub(prepared), layout)
        case .hub:
            return (try HubLayout.ordered(preparing(store)), layout)
        case .unknown:
            throw LayoutError.unrecognized(sample: Array(store.names.prefix(5)))
        }
    }

    /// Renders hub-named tensors in `layout`, DINOv2's or DINOv3's names as the weights are. Values
    /// are bit-identical (HF q/k/v are views of the fused qkv; timm's folded `cls_token` is the one
    /// float sum timm's converter makes). A model a layout cannot hold (an untied `cls_norm` in HF
    /// or timm) is a `LayoutError.unrepresentable` naming the tensor.
    /// `chunks` applies to `.training` only: `blocks.<k>.<i>` as `block_chunks = chunks` names them.
    /// HF and timm renderings carry the values those layouts have no slot for in their metadata
    /// (`CarriedTensors`): write them as safetensors to keep hub → layout → hub bit-identical.
    public static func render(_ hub: TensorStore, as layout: Layout, chunks: Int = 0) throws -> TensorStore {
        switch layout {
        case .hub: return try HubLayout.ordered(hub)
        case .hf: return BackboneArchitecture.isDINOv3(hubStore: hub) ? try HFv3Layout.fromHub(hub) : try HFLayout.fromHub(hub)
        case .timm: return BackboneArchitecture.isDINOv3(hubStore: hub) ? try TimmV3Layout.fromHub(hub) : try TimmLayout.fromHub(hub)
        case .training: return try TrainingLayout.fromHub(hub, chunks: chunks)
        case .unknown: throw LayoutError.cannotRender(layout: layout, reason: "choose hub, hf, timm or training")
        }
    }

    /// Containers a whole state dict is sometimes saved under (`{"model": sd}`, Lightning's
    /// `{"state_dict": sd}`): stripped when every name has the same one.
    static let containers: Set<String> = ["model", "state_dict"]

    /// Names without wrapper components and without a container prefix they all share.
    static func prepared(_ names: [String]) -> [String] {
        let unwrapped = names.map(LayoutNames.strippingWrappers)
        guard let first = unwrapped.first, let dot = first.firstIndex(of: "."),
              containers.contains(String(first[..<dot])) else { return unwrapped }
        let prefix = String(first[...dot])
        guard unwrapped.allSatisfy({ $0.hasPrefix(prefix) }) else { return unwrapped }
        return unwrapped.map { String($0.dropFirst(prefix.count)) }
    }

    /// The store under its `prepared` names (the same store when nothing changes).
    private static func preparing(_ store: TensorStore) throws -> TensorStore {
        let names = prepared(store.names)
        guard names != store.names else { return store }
        return try .layoutStore(zip(names, store.tensors).map { ($0, $1.value, $1.key) }, metadata: store.metadata)
    }
}
