import Formats
import TensorStore

/// Reads a weights file or folder into a store, the reader chosen by content (safetensors,
/// `torch.save` zip or legacy, transformers folder, ...; see `Checkpoint.read`). Names stay as the
/// file has them; `Model(store:)` translates layouts.
public func loadWeights(path: String) throws -> TensorStore {
    try Checkpoint.read(path: path).store
}
