import TensorStore

extension TorchCheckpoint {
    /// `torch.save({container: state_dict, key: int, ...}, path)`: a state dict nested under
    /// `container` beside integer entries — the layout of DINOv2's training checkpoints
    /// (`{"model": {student.*, teacher.*, ...}, "iteration": N}`), which fvcore's checkpointer
    /// reads back. Written atomically, storages 64-byte aligned, as `write(_:to:)`.
    public static func write(_ store: TensorStore, to path: String, container: String, integers: [(String, Int)]) throws {
        let entries = [PickleDictEntry(key: .string(container), value: TorchCheckpointWriter.stateDict(store))]
            + integers.map { PickleDictEntry(key: .string($0.0), value: .int($0.1)) }
        try TorchCheckpointWriter.write(root: .dict(PickleDict(kind: .dict, entries: entries)), storages: store, to: path)
    }
}
