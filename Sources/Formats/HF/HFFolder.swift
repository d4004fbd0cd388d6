#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import OrderedCollections
import TensorStore

/// A transformers model folder: `config.json` plus the weights in one of the forms
/// `HFWeightsForm` lists (`model.safetensors`, `pytorch_model.bin`, or shards of either listed
/// in an index), tensors in HF names (`HFLayout`).
public enum HFFolder {
    public static let configFile = "config.json"
    /// What DinoKit writes: one file, or shards listed in `indexFile` (`HFShardPlan`).
    public static let weightsFile = HFWeightsForm.safetensors.file
    public static let indexFile = HFWeightsForm.safetensorsShards.file

    /// A directory holding config.json and weights in a form transformers reads.
    public static func isHFFolder(path: String) -> Bool {
        isDirectory(path) && isFile(join(path, configFile)) && HFWeightsForm.find(in: path) != nil
    }

    /// The folder's tensors in HF names, from its weights in the first form `HFWeightsForm` finds
    /// (as transformers chooses). Metadata: the weights' own (safetensors `__metadata__`),
    /// `num_heads` (from `num_attention_heads`) and every scalar config field as `hf.<field>`.
    /// What reading may allocate is bounded by `limits` for the whole folder, all shards together.
    public static func read(path: String, limits: ReadLimits = .default) throws -> TensorStore {
        guard isDirectory(path) else { throw HFFolderError.notAFolder(path: path) }
        let configPath = join(path, configFile)
        guard isFile(configPath) else { throw HFFolderError.missingFile(path: configPath) }
        let config = try HFConfig.read(path: configPath)
        guard let form = HFWeightsForm.find(in: path) else { throw HFFolderError.missingWeights(folder: path) }
        let budget = MemoryBudget(limits)
        var store: TensorStore
        if form.isSharded {
            let index = try HFShardIndex(path: join(path, form.file))
            store = try index.load(folder: path) { try form.readFile($0, budget: budget) }
        } else {
            store = try form.readFile(join(path, form.file), budget: budget)
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

    static func isBackboneName(_ name: String) -> Bool {
        if HubLayout.leading.contains(name) || HubLayout.trailing.contains(name) { return true }
        if let (_, rest) = HubLayout.block(name) { return HubLayout.blockParameters.contains(rest) }
        return false
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
