import TensorStore

/// The ways a transformers folder holds its weights, in the order transformers' `from_pretrained`
/// looks for them: safetensors before pickles, one file before a shard index. A folder holding
/// several (a `model.safetensors` added beside an old `pytorch_model.bin`) is read in the first
/// form it has, as transformers reads it.
public enum HFWeightsForm: String, CaseIterable, Sendable {
    /// `model.safetensors`.
    case safetensors = "model.safetensors"
    /// `model.safetensors.index.json` and the `model-0000k-of-0000n.safetensors` it lists.
    case safetensorsShards = "model.safetensors.index.json"
    /// `pytorch_model.bin`: a `torch.save` state dict, what transformers saved before safetensors.
    case pytorch = "pytorch_model.bin"
    /// `pytorch_model.bin.index.json` and the `pytorch_model-0000k-of-0000n.bin` it lists.
    case pytorchShards = "pytorch_model.bin.index.json"

    /// The file whose presence means this form: the weights, or the shard index.
    public var file: String { rawValue }

    public var isSharded: Bool { self == .safetensorsShards || self == .pytorchShards }

    /// The form a folder's weights are in: the first whose file is present.
    public static func find(in folder: String) -> HFWeightsForm? {
        allCases.first { HFFolder.isFile(HFFolder.join(folder, $0.file)) }
    }

    /// One weights file of this form (the single file, or a shard), read by the reader its
    /// extension stands for (never sniffed: a shard of a pickle index is a pickle), its
    /// allocations charged to `budget`, which the folder's files share.
    func readFile(_ path: String, budget: MemoryBudget) throws -> TensorStore {
        switch self {
        case .safetensors, .safetensorsShards: return try Safetensors.read(file: MappedFile(path: path), budget: budget)
        case .pytorch, .pytorchShards: return try TorchCheckpoint.read(path: path, budget: budget).store
        }
    }
}
