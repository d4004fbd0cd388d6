import OrderedCollections
import TensorStore

/// The canonical (torch-hub) names and their order: module registration order of the official
/// `DinoVisionTransformer` — own parameters, then `patch_embed`, `blocks`, `norm`; inside a block
/// `norm1, attn.qkv, attn.proj, ls1, norm2, mlp, ls2` (dinov2-spec.md §1.11). DINOv3's names
/// (`storage_tokens`, `rope_embed.periods`, `bias_mask`, `w1/w2/w3`, `cls_norm`) take their
/// places in its module order (dinov3-spec.md).
enum HubLayout {
    static let leading = [
        "cls_token", "pos_embed", "register_tokens", "storage_tokens", "mask_token",
        "patch_embed.proj.weight", "patch_embed.proj.bias", "rope_embed.periods",
    ]
    static let blockParameters = [
        "norm1.weight", "norm1.bias",
        "attn.qkv.weight", "attn.qkv.bias", "attn.qkv.bias_mask", "attn.proj.weight", "attn.proj.bias",
        "ls1.gamma",
        "norm2.weight", "norm2.bias",
        "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias",
        "mlp.w12.weight", "mlp.w12.bias", "mlp.w1.weight", "mlp.w1.bias", "mlp.w2.weight", "mlp.w2.bias",
        "mlp.w3.weight", "mlp.w3.bias",
        "ls2.gamma",
    ]
    static let trailing = ["norm.weight", "norm.bias", "cls_norm.weight", "cls_norm.bias",
                           "local_cls_norm.weight", "local_cls_norm.bias"]
    /// DINOv3's untied norm of the cls and storage tokens (`untie_cls_and_patch_norms`).
    static let classNorm = ["cls_norm.weight", "cls_norm.bias"]

    private static let leadingRank = Dictionary(uniqueKeysWithValues: leading.enumerated().map { ($1, $0) })
    private static let blockRank = Dictionary(uniqueKeysWithValues: blockParameters.enumerated().map { ($1, $0) })
    private static let trailingRank = Dictionary(uniqueKeysWithValues: trailing.enumerated().map { ($1, $0) })

    /// `blocks.<i>.<rest>` split into its index and rest.
    static func block(_ name: String) -> (index: Int, rest: String)? {
        guard name.hasPrefix("blocks.") else { return nil }
        let tail = name.dropFirst("blocks.".count)
        guard let dot = tail.firstIndex(of: "."), let i = LayoutNames.index(tail[..<dot]) else { return nil }
        return (i, String(tail[tail.index(after: dot)...]))
    }

    /// The store with known names in hub order; names this table does not know keep their
    /// relative order, unknown block parameters after their block, anything else at the end.
    static func ordered(_ store: TensorStore) throws -> TensorStore {
        func rank(_ name: String, _ position: Int) -> (Int, Int, Int) {
            if let r = leadingRank[name] { return (0, r, 0) }
            if let (i, rest) = block(name) { return (1, i, blockRank[rest] ?? blockParameters.count + position) }
            if let r = trailingRank[name] { return (2, r, 0) }
            return (3, position, 0)
        }
        let keyed = store.names.enumerated().map { (rank($1, $0), $1) }
        // A hub checkpoint is in hub order already: the same store, without rebuilding it.
        if zip(keyed, keyed.dropFirst()).allSatisfy({ $0.0 <= $1.0 }) { return store }
        var out = TensorStore()
        out.metadata = store.metadata
        for (_, name) in keyed.sorted(by: { $0.0 < $1.0 }) {
            guard let t = store[name] else { continue }
            try out.insert(t, named: name)
        }
        return out
    }

    /// Number of blocks (`blocks.<i>.*` with the highest index + 1), 0 when there are none.
    static func depth(_ store: TensorStore) -> Int {
        store.names.compactMap { block($0)?.index }.max().map { $0 + 1 } ?? 0
    }
}

/// Name parsing shared by the layouts.
enum LayoutNames {
    /// A non-negative decimal index written as checkpoints write it (ASCII digits only).
    static func index<S: StringProtocol>(_ s: S) -> Int? {
        guard !s.isEmpty, s.count <= 9, s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(s)
    }

    /// Components that wrappers insert and that carry no meaning for the weights: DDP/FSDP
    /// (`module.`, `_fsdp_wrapped_module.`), activation checkpointing, torch.compile.
    static let wrapperComponents: Set<Substring> = ["module", "_fsdp_wrapped_module", "_checkpoint_wrapped_module", "_orig_mod"]

    static func strippingWrappers(_ name: String) -> String {
        guard hasWrapper(name) else { return name }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.contains(where: { wrapperComponents.contains($0) }) else { return name }
        return parts.filter { !wrapperComponents.contains($0) }.joined(separator: ".")
    }
}

extension TensorStore {
    /// A store with the same metadata and the given (name, tensor) pairs; a repeated target name
    /// is a `LayoutError.collision` naming both sources.
    static func layoutStore(_ pairs: [(name: String, tensor: Tensor, source: String)],
                            metadata: OrderedDictionary<String, String>) throws -> TensorStore {
        var out = TensorStore()
        out.metadata = metadata
        var sources: [String: String] = [:]
        for (name, tensor, source) in pairs {
            if let earlier = sources[name] { throw LayoutError.collision(name: name, sources: [earlier, source]) }
            sources[name] = source
            try out.insert(tensor, named: name)
        }
        return out
    }
}
