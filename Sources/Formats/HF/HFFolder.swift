#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import OrderedCollections
import TensorStore

/// A transformers model folder: `config.json` plus `model.safetensors` (or shards listed in
/// `model.safetensors.index.json`), tensors in HF names (`HFLayout`).
public enum HFFolder {
    public static let configFile = "config.json"
    public static let weightsFile = "model.safetensors"
    public static let indexFile = "model.safetensors.index.json"
    /// Largest shard index DinoKit reads (a ViT-g index is ~50 KB).
    static let maxIndexBytes = 16 << 20

    /// A directory holding config.json and model.safetensors (or a sharded index).
    public static func isHFFolder(path: String) -> Bool {
        isDirectory(path) && isFile(join(path, configFile)) && (isFile(join(path, weightsFile)) || isFile(join(path, indexFile)))
    }

    /// The folder's tensors in HF names. Metadata: the safetensors `__metadata__`, `num_heads`
    /// (from `num_attention_heads`) and every scalar config field as `hf.<field>`.
    public static func read(path: String) throws -> TensorStore {
        guard isDirectory(path) else { throw HFFolderError.notAFolder(path: path) }
        let configPath = join(path, configFile)
        guard isFile(configPath) else { throw HFFolderError.missingFile(path: configPath) }
        let config = try HFConfig.read(path: configPath)
        var store: TensorStore
        if isFile(join(path, weightsFile)) {
            store = try Safetensors.read(path: join(path, weightsFile))
        } else if isFile(join(path, indexFile)) {
            store = try readShards(folder: path)
        } else {
            throw HFFolderError.missingFile(path: join(path, weightsFile))
        }
        if let heads = config["num_attention_heads"] {
            guard let h = Int(heads), h > 0 else {
                throw HFFolderError.badConfig(path: configPath, reason: "num_attention_heads '\(String(heads.prefix(20)).escapedForMessage)' is not a positive integer")
            }
            store.metadata["num_heads"] = String(h)
        }
        try checkConfig(config, against: store, path: configPath)
        for (key, value) in config { store.metadata["hf." + key] = value }
        return store
    }

    /// config.json fields the tensors also imply, with what the tensors say. A field that is not
    /// a plain non-negative integer, or that contradicts the tensors (hidden_size 10^9 over
    /// 384-wide weights), is an error naming the field and both values; absent fields are fine.
    static func checkConfig(_ config: OrderedDictionary<String, String>, against store: TensorStore, path: String) throws {
        let fields = ["hidden_size", "num_hidden_layers", "num_attention_heads", "patch_size", "num_channels",
                      "num_register_tokens", "mlp_ratio"]
        var values: [String: Int] = [:]
        for field in fields {
            guard let text = config[field] else { continue }
            guard !text.isEmpty, text.count <= 18, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let v = Int(text) else {
                throw HFFolderError.badConfig(path: path, reason: "\(field) is \(text.escapedForMessage), not a non-negative integer")
            }
            values[field] = v
        }
        if let h = values["num_attention_heads"], h == 0 {
            throw HFFolderError.badConfig(path: path, reason: "num_attention_heads is 0")
        }
        // Only a store that is a DINOv2 backbone implies these; anything else is checked as text only.
        var weights = store
        weights.metadata["num_heads"] = nil  // the heads are checked here, against the width
        guard let hub = try? KeyLayouts.canonicalize(weights).store,
              let arch = try? BackboneArchitecture.detect(hubStore: hub) else { return }
        var implied: [(String, Int)] = [("hidden_size", arch.embedDim), ("num_hidden_layers", arch.depth),
                                        ("patch_size", arch.patchSize), ("num_channels", arch.inChannels),
                                        ("num_register_tokens", arch.registerTokens)]
        if let ratio = HFConfig.mlpRatio(arch) { implied.append(("mlp_ratio", ratio)) }
        for (field, tensors) in implied {
            if let v = values[field], v != tensors {
                throw HFFolderError.configContradicts(path: path, field: field, config: v, tensors: "\(tensors)")
            }
        }
        if let h = values["num_attention_heads"], arch.embedDim % h != 0 {
            throw HFFolderError.configContradicts(path: path, field: "num_attention_heads", config: h,
                                                  tensors: "width \(arch.embedDim), not a multiple of it")
        }
    }

    /// Writes `config.json` and `model.safetensors` for transformers' `Dinov2Model` (or
    /// `Dinov2WithRegistersModel` when the backbone has register tokens) into `directory`,
    /// creating it when missing (its parent must exist: `OutputPath.checkFolder`). Each file is
    /// written atomically; when a write fails, a folder this call created is removed again, so a
    /// failed convert leaves nothing behind. The number of heads comes from
    /// `metadata["num_heads"]`, else head dimension 64. A store in another layout is canonicalized
    /// first; tensors that are not part of a DINOv2 backbone are refused (transformers would
    /// report them as unexpected).
    public static func write(hub: TensorStore, to directory: String) throws {
        var store = try KeyLayouts.canonicalize(hub).store
        for name in store.names where !isBackboneName(name) {
            throw HFFolderError.unsupported(reason: "tensor '\(name.escapedForMessage)' is not part of a DINOv2 backbone; transformers would reject it")
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
        var rendered = try KeyLayouts.render(store, as: .hf)
        rendered.metadata = weightsMetadata
        let created = try OutputPath.createFolder(directory, writing: [configFile, weightsFile])
        do {
            try Safetensors.write(rendered, to: join(directory, weightsFile))
            try AtomicFileWriter.write(to: join(directory, configFile)) { try $0.write(config) }
        } catch {
            if created {
                unlink(join(directory, weightsFile))
                rmdir(directory)
            }
            throw error
        }
    }

    private static func isBackboneName(_ name: String) -> Bool {
        if HubLayout.leading.contains(name) || HubLayout.trailing.contains(name) { return true }
        if let (_, rest) = HubLayout.block(name) { return HubLayout.blockParameters.contains(rest) }
        return false
    }

    // MARK: shards

    private static func readShards(folder: String) throws -> TensorStore {
        let indexPath = join(folder, indexFile)
        let file = try MappedFile(path: indexPath)
        guard file.count <= maxIndexBytes else { throw HFFolderError.badIndex(path: indexPath, reason: "\(file.count) bytes, more than \(maxIndexBytes)") }
        if let bad = JSONReader.firstInvalidUTF8Offset(file.bytes) {
            throw HFFolderError.badIndex(path: indexPath, reason: "invalid UTF-8 at byte \(bad)")
        }
        var weightMap: OrderedDictionary<String, String> = [:]
        var r = JSONReader(file.bytes)
        do {
            var object = try r.beginObject()
            while let key = try r.nextKey(&object) {
                guard key == "weight_map" else { try r.skipValue(); continue }
                var map = try r.beginObject()
                while let name = try r.nextKey(&map) {
                    guard try r.peekKind() == .string else { throw HFFolderError.badIndex(path: indexPath, reason: "weight_map['\(name.escapedForMessage)'] is not a file name") }
                    guard weightMap[name] == nil else { throw HFFolderError.badIndex(path: indexPath, reason: "'\(name.escapedForMessage)' listed twice") }
                    weightMap[name] = try r.readString()
                }
            }
            try r.finish()
        } catch let e as JSONReader.SyntaxError {
            throw HFFolderError.badIndex(path: indexPath, reason: "\(e.message) at byte \(e.offset)")
        }
        guard !weightMap.isEmpty else { throw HFFolderError.badIndex(path: indexPath, reason: "no weight_map entries") }
        // In index order, once each; the set keeps this linear (an index of a million distinct
        // shard names made the array search quadratic).
        var shards: [String] = []
        var seen: Set<String> = []
        for shard in weightMap.values where seen.insert(shard).inserted {
            // Shards live beside the index: a path could point anywhere.
            guard !shard.isEmpty, !shard.contains("/"), shard != ".", shard != ".." else {
                throw HFFolderError.badIndex(path: indexPath, reason: "shard name '\(shard.escapedForMessage)' is not a plain file name")
            }
            shards.append(shard)
        }
        var store = TensorStore()
        for shard in shards {
            let part = try Safetensors.read(path: join(folder, shard))
            for (name, t) in part.tensors {
                guard weightMap[name] == shard else {
                    throw HFFolderError.badIndex(path: indexPath, reason: "tensor '\(name.escapedForMessage)' is in \(shard.escapedForMessage) but the index says \((weightMap[name] ?? "nothing").escapedForMessage)")
                }
                try store.insert(t, named: name)
            }
            for (k, v) in part.metadata where store.metadata[k] == nil { store.metadata[k] = v }
        }
        if let missing = weightMap.keys.first(where: { store[$0] == nil }) {
            throw HFFolderError.badIndex(path: indexPath, reason: "tensor '\(missing.escapedForMessage)' is not in \((weightMap[missing] ?? "?").escapedForMessage)")
        }
        return store
    }

    // MARK: file system

    static func join(_ a: String, _ b: String) -> String { a.hasSuffix("/") ? a + b : a + "/" + b }

    private static func mode(_ path: String) -> mode_t? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return st.st_mode & S_IFMT
    }

    static func isDirectory(_ path: String) -> Bool { mode(path) == S_IFDIR }
    static func isFile(_ path: String) -> Bool { mode(path) == S_IFREG }
}

public enum HFFolderError: Error, CustomStringConvertible, Equatable {
    case notAFolder(path: String)
    case missingFile(path: String)
    case badConfig(path: String, reason: String)
    case badIndex(path: String, reason: String)
    case unknownHeads(embedDim: Int)
    case unsupported(reason: String)
    /// A config.json field that the tensors contradict (`tensors`: what they imply).
    case configContradicts(path: String, field: String, config: Int, tensors: String)

    public var description: String {
        switch self {
        case let .notAFolder(path): return "\(path): not a directory (an HF folder holds config.json and model.safetensors)"
        case let .missingFile(path): return "\(path): missing (an HF folder needs config.json and model.safetensors)"
        case let .badConfig(path, reason): return "\(path): \(reason)"
        case let .badIndex(path, reason): return "\(path): \(reason)"
        case let .unknownHeads(d):
            return "number of attention heads unknown for width \(d) (not a multiple of 64); pass --num-heads N (or set metadata num_heads)"
        case let .unsupported(reason): return "cannot write an HF folder: \(reason)"
        case let .configContradicts(path, field, config, tensors):
            return "\(path): \(field) is \(config) but the tensors say \(tensors); correct or remove the field"
        }
    }
}
