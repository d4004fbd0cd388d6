#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import OrderedCollections
import TensorStore

extension HFFolder {
    /// Writes `config.json` and the weights for transformers' `Dinov2Model` (or
    /// `Dinov2WithRegistersModel` when the backbone has register tokens) into `directory`,
    /// creating it when missing (its parent must exist: `OutputPath.checkFolder`). The weights go
    /// into `model.safetensors`, or with `maxShardSize` into shards of at most that many bytes
    /// plus their index when they do not fit in one (`HFShardPlan`, save_pretrained's rule).
    ///
    /// The folder changes all at once as far as a file system allows: every file is written to a
    /// temporary beside its target and synced before any target is replaced, so a failed write
    /// (a full disk, a tensor that cannot be written) leaves the folder as it was, and a folder
    /// this call created is removed again. Then the files are renamed into place, and weights of
    /// an earlier write that would contradict the new ones are removed: a stale
    /// `model.safetensors` would hide new shards from every reader, a stale index and shards
    /// would sit beside a new single file.
    ///
    /// The number of heads comes from `metadata["num_heads"]`, else head dimension 64. A store in
    /// another layout is canonicalized first; tensors that are not part of a DINOv2 backbone are
    /// refused (transformers would report them as unexpected). Returns the weight files written.
    @discardableResult
    public static func write(hub: TensorStore, to directory: String, maxShardSize: Int? = nil) throws -> [String] {
        var store = try KeyLayouts.canonicalize(hub).store
        for name in store.names where !isBackboneName(name) {
            throw HFFolderError.unsupported(reason: "tensor '\(name.escapedForMessage)' is not part of a DINOv2/DINOv3 backbone; transformers would reject it")
        }
        let arch = try BackboneArchitecture.detect(hubStore: store)
        guard let heads = arch.numHeads else { throw HFFolderError.unknownHeads(embedDim: arch.embedDim) }
        var weightsMetadata: OrderedDictionary<String, String> = ["format": "pt"]
        if store["mask_token"] == nil, arch.registerTokens > 0, let cls = store["cls_token"] {
            // Dinov2WithRegistersModel always has a mask token; DINOv2 initialises it to zeros and it
            // only acts on masked (training) inputs.
            try store.insert(TensorSurgery.zeros(like: cls, shape: [1, arch.embedDim]), named: "mask_token")
            weightsMetadata["dinokit.mask_token"] = "zeros (absent in the source)"
        }
        let dtype = store["patch_embed.proj.weight"]?.dtype ?? .f32
        let config = try HFConfig.json(arch, heads: heads, dtype: dtype, hasMaskToken: store["mask_token"] != nil)
        let rendered = try KeyLayouts.render(store, as: .hf)
        // Hub values HF has no slot for (DINOv3's periods, a non-zero key bias), kept so that
        // hub -> HF -> hub is bit-identical; transformers ignores safetensors metadata.
        for (key, value) in rendered.metadata where key.hasPrefix("dinokit.hub.") { weightsMetadata[key] = value }

        // Every shard carries the metadata, as save_pretrained gives each shard {"format": "pt"}.
        let plan = HFShardPlan(rendered, maxShardSize: maxShardSize)
        var files: [(name: String, body: (AtomicFileWriter) throws -> Void)] = try plan.shards.map { shard in
            let part = try TensorStore(shard.names.compactMap { name in rendered[name].map { (name, $0) } }, metadata: weightsMetadata)
            return (shard.file, { try Safetensors.write(part, into: $0) })
        }
        if plan.isSharded { files.append((indexFile, { try $0.write(plan.indexJSON()) })) }
        files.append((configFile, { try $0.write(config) }))
        let created = try OutputPath.createFolder(directory, writing: files.map(\.name))
        try writeTogether(files, in: directory, createdFolder: created)
        try removeStaleWeights(in: directory, written: Set(files.map(\.name)))
        return plan.shards.map(\.file)
    }

    /// All files synced as temporaries first, then renamed in order (shards, index, config).
    private static func writeTogether(_ files: [(name: String, body: (AtomicFileWriter) throws -> Void)],
                                      in directory: String, createdFolder: Bool) throws {
        var writers: [AtomicFileWriter] = []
        do {
            for (name, body) in files {
                let w = try AtomicFileWriter(path: join(directory, name))
                writers.append(w)
                try body(w)
                try w.sync()
            }
        } catch {
            for w in writers { w.abandon() }
            if createdFolder { rmdir(directory) }
            throw error
        }
        var committed = 0
        do {
            for w in writers {
                try w.commit()
                committed += 1
            }
        } catch {
            // A rename failed (the folder changed under us): drop what is not in place yet; a
            // folder this call created goes entirely.
            for w in writers[committed...] { w.abandon() }
            if createdFolder {
                for w in writers[..<committed] { unlink(w.path) }
                rmdir(directory)
            }
            throw error
        }
    }

    /// Removes DinoKit's (and save_pretrained's) safetensors weight files that the write just
    /// made did not produce: `model.safetensors` beside new shards (readers would take it instead
    /// of them, so failing to remove it is an error), an index beside a new single file, shards
    /// of another count. Other files (a README, a `pytorch_model.bin`, which readers take only
    /// when no safetensors weights exist) are left alone.
    private static func removeStaleWeights(in directory: String, written: Set<String>) throws {
        guard let d = opendir(directory) else { return }
        var stale: [String] = []
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            guard !written.contains(name) else { continue }
            if name == weightsFile || name == indexFile || HFShardPlan.isShardFileName(name) { stale.append(name) }
        }
        closedir(d)
        for name in stale where unlink(join(directory, name)) != 0 && errno != ENOENT && name == weightsFile {
            throw TensorStoreError.io(path: join(directory, name),
                                      message: "cannot remove the previous weights, which readers would take instead of the new shards: \(String(cString: strerror(errno)))")
        }
        let dfd = open(directory, O_RDONLY | O_DIRECTORY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }
}
