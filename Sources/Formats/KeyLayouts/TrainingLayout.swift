import TensorStore

/// DINOv2 training checkpoints (dinov2-spec.md §1.9, §1.11, §2.1):
/// - `teacher_checkpoint.pth`: `{"teacher": {backbone.*, dino_head.*, ibot_head.*}}`;
/// - `model_<iter>.rank_<r>.pth`: `{"model": {student.*, teacher.*, dino_loss.center,
///   ibot_patch_loss.center}, "optimizer": ..., "iteration": ...}`;
/// with backbone blocks chunked as `blocks.<k>.<i>` (`i` the global block index) when the model
/// was built with `block_chunks > 0`. Names arrive flattened with dots (`model.teacher.backbone.
/// blocks.0.1.norm1.weight`); wrapper components (`module`, `_fsdp_wrapped_module`, ...) are
/// ignored, as DINOv2's own `load_pretrained_weights` ignores `module.`.
///
/// DINOv3 (`dinov3/train/train.py` `do_test`, `sharded_eval_checkpoint` off) writes the same
/// `teacher_checkpoint.pth` form: `{"teacher": {backbone.*, dino_head.*, ibot_head.*}}`, blocks never
/// chunked. Its periodic checkpoints, and a sharded eval checkpoint, are
/// `torch.distributed.checkpoint` shard folders: not read.
enum TrainingLayout {
    static let branches: [String: TrainingBranch] = ["teacher": .teacher, "student": .student]
    static let heads: Set<Substring> = ["dino_head", "ibot_head"]
    /// Top-level containers of a periodic checkpoint that hold no model weights.
    static let nonModel: Set<Substring> = ["optimizer", "iteration", "scheduler", "scaler"]

    /// What one flattened name is: a backbone tensor of some branch (nil = no branch prefix),
    /// or something else (heads, loss centers, optimizer state).
    private static func classify(_ name: String) -> (branch: TrainingBranch?, backbone: String)? {
        var parts = LayoutNames.strippingWrappers(name).split(separator: ".", omittingEmptySubsequences: false)[...]
        if parts.first == "model" { parts = parts.dropFirst() }
        guard let first = parts.first, !nonModel.contains(first) else { return nil }
        var branch: TrainingBranch? = nil
        if let b = branches[String(first)] {
            branch = b
            parts = parts.dropFirst()
        }
        guard let part = parts.first else { return nil }
        if part == "backbone" { return (branch, parts.dropFirst().joined(separator: ".")) }
        if heads.contains(part) || part.hasSuffix("_loss") { return nil }
        // A bare backbone (a chunked model's own state_dict): hub roots without a `backbone.` prefix.
        if branch == nil, HubLayout.leading.contains(where: { $0.hasPrefix(part + ".") || $0 == part }) || part == "blocks" || part == "norm" {
            return (nil, parts.joined(separator: "."))
        }
        return nil
    }

    /// True when `names` look like a training checkpoint (branch or backbone/head prefixes, or
    /// chunked blocks).
    static func matches(_ names: [String]) -> Bool {
        names.contains { LayoutNames.withBytes($0, looksLikeTraining) }
    }

    /// One name of `matches`, on its bytes: wrapper components skipped, an optional `model.`, then
    /// a branch with something after it, a backbone/head root, or a chunked block (`unchunked`).
    private static func looksLikeTraining(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var parts = NameComponents(bytes, skippingWrappers: true)
        guard var first = parts.next() else { return false }
        if parts.equals(first, "model") {
            guard let next = parts.next() else { return false }
            first = next
        }
        if parts.equals(first, "teacher") || parts.equals(first, "student") { return parts.next() != nil }
        if parts.equals(first, "backbone") || parts.equals(first, "dino_head") || parts.equals(first, "ibot_head") { return true }
        guard parts.equals(first, "blocks"), let kc = parts.next(), let ic = parts.next(),
              let k = parts.index(kc), let i = parts.index(ic), k <= i else { return false }
        return parts.next() != nil
    }

    /// `blocks.<k>.<i>.<rest>` -> `blocks.<i>.<rest>` (nil when the name is not chunked).
    static func unchunked(_ name: String) -> String? {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count >= 4, parts[0] == "blocks", let k = LayoutNames.index(parts[1]), let i = LayoutNames.index(parts[2]),
              k <= i else { return nil }
        return (["blocks", parts[2]] + parts[3...]).joined(separator: ".")
    }

    static func toHub(_ store: TensorStore, which: TrainingBranch) throws -> (store: TensorStore, branch: TrainingBranch?) {
        var byBranch: [TrainingBranch?: [(name: String, tensor: Tensor, source: String)]] = [:]
        for (source, t) in store.tensors {
            guard let (branch, name) = classify(source), !name.isEmpty else { continue }
            byBranch[branch, default: []].append((name, t, source))
        }
        let chosen: TrainingBranch?
        if byBranch[which] != nil {
            chosen = which
        } else if which == .teacher, byBranch[nil] != nil, byBranch[.student] == nil {
            chosen = nil  // a lone backbone without branch prefix (e.g. a chunked model's state_dict)
        } else if byBranch.isEmpty {
            throw LayoutError.noBackbone(sample: Array(store.names.prefix(5)))
        } else {
            let available = [TrainingBranch.teacher, .student].filter { byBranch[$0] != nil }.map(\.rawValue)
            throw LayoutError.branchMissing(requested: which, available: available)
        }
        let entries = byBranch[chosen] ?? []
        let chunked = entries.filter { unchunked($0.name) != nil }
        let plainBlocks = entries.filter { HubLayout.block($0.name) != nil && unchunked($0.name) == nil }
        if !chunked.isEmpty, let mixed = plainBlocks.first {
            throw LayoutError.badTensor(name: mixed.source, detail: "unchunked block name in a checkpoint with chunked blocks (\(chunked[0].source))")
        }
        let pairs = entries.map { (name: unchunked($0.name) ?? $0.name, tensor: $0.tensor, source: $0.source) }
        // Optimizer hyper-parameters (scalars the reader keeps as metadata) say nothing about the backbone.
        let metadata = store.metadata.filter { !$0.key.hasPrefix("optimizer.") }
        return (try HubLayout.ordered(.layoutStore(pairs, metadata: metadata)), chosen)
    }

    /// Hub names under `teacher.backbone.`, blocks chunked as `block_chunks = chunks` would
    /// (`chunksize = depth / chunks`, chunk `i / chunksize`); `chunks = 0` leaves them plain.
    static func fromHub(_ hub: TensorStore, chunks: Int) throws -> TensorStore {
        let store = try HubLayout.ordered(hub)
        let depth = HubLayout.depth(store)
        guard chunks >= 0 else { throw LayoutError.cannotRender(layout: .training, reason: "chunks \(chunks) is negative") }
        guard chunks <= max(depth, 1) || chunks == 0 else {
            throw LayoutError.cannotRender(layout: .training, reason: "\(chunks) chunks for \(depth) blocks")
        }
        let chunkSize = chunks > 0 ? max(depth / chunks, 1) : 0
        let pairs = store.tensors.map { (name, t) -> (name: String, tensor: Tensor, source: String) in
            var target = name
            if chunkSize > 0, let (i, rest) = HubLayout.block(name) {
                target = "blocks.\(i / chunkSize).\(i).\(rest)"
            }
            return ("teacher.backbone." + target, t, name)
        }
        return try .layoutStore(pairs, metadata: store.metadata)
    }
}
