import TensorStore

public enum HFFolderError: Error, CustomStringConvertible, Equatable {
    case notAFolder(path: String)
    case missingFile(path: String)
    /// A folder with config.json but none of the weight files `HFWeightsForm` lists.
    case missingWeights(folder: String)
    case badConfig(path: String, reason: String)
    /// A shard index that is malformed, or that the shards contradict.
    case badIndex(path: String, reason: String)
    case unknownHeads(embedDim: Int)
    case unsupported(reason: String)
    /// A config.json field that the tensors contradict (`tensors`: what they imply).
    case configContradicts(path: String, field: String, config: Int, tensors: String)

    public var description: String {
        switch self {
        case let .notAFolder(path): return "\(path): not a directory (an HF folder holds config.json and the weights)"
        case let .missingFile(path): return "\(path): missing (an HF folder needs config.json and the weights)"
        case let .missingWeights(folder):
            return "\(folder): no weights (an HF folder holds \(HFWeightsForm.allCases.map(\.file).joined(separator: ", ")) or their shards)"
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
