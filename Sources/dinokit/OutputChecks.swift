import Formats
import TensorStore

/// Every command checks its outputs against the one output rule (`OutputPath`) before it loads
/// a model or reads data, so a bad path costs a second, not a run: the folder must exist (a
/// folder output may be created, its parent must exist), an output is not a directory, and no
/// output is one of the inputs (compared by device and inode, so links count).
func checkOutputs(files: [String] = [], folders: [(path: String, writing: [String])] = [], inputs: [String?]) throws {
    let inputs = inputs.compactMap { $0 }
    for file in files { try OutputPath.checkFile(file, inputs: inputs) }
    for folder in folders { try OutputPath.checkFolder(folder.path, inputs: inputs, writing: folder.writing) }
}

/// A checkpoint output: an HF folder (config.json, model.safetensors or shards and their index)
/// or one file. Shard names depend on the weights and are checked when they are written.
func checkCheckpointOutput(_ path: String, format: CheckpointFormat, inputs: [String?]) throws {
    if format == .hfFolder {
        try checkOutputs(folders: [(path, [HFFolder.configFile, HFFolder.weightsFile, HFFolder.indexFile])], inputs: inputs)
    } else {
        try checkOutputs(files: [path], inputs: inputs)
    }
}
