import TensorStore

extension TorchCheckpoint {
    /// `torch.save({container: state_dict, key: int, ...}, path)`: a state dict nested under
    /// `container` beside integer entries — the layout of DINOv2's training checkpoints
    /// (`{"model": {student.*, teacher.*, ...}, "iteration": N}`), which fvcore's checkpointer
    /// reads back. Written atomically, storages 64-byte aligned, as `write(_:to:)`.
    public static func write(_ store: TensorStore, to path: String, container: String, integers: [(String, Int)]) throws {
        let entries = [PickleDictEntry(key: .string(container), value: TorchCheckpointWriter.stateDict(store))]
            + integers.map { PickleDictEntry(key: .string($0.0), value: .int($0.1)) }
        let pickle = try Pickler.pickle(.dict(PickleDict(kind: .dict, entries: entries)))
        let root = TorchCheckpointWriter.rootFolder(for: path)
        try AtomicFileWriter.write(to: path) { output in
            var zip = ZipWriter(output: output, alignment: 64)
            try zip.addStored(name: "\(root)/data.pkl", bytes: pickle)
            try zip.addStored(name: "\(root)/.format_version", bytes: Array("1".utf8))
            try zip.addStored(name: "\(root)/.storage_alignment", bytes: Array("64".utf8))
            try zip.addStored(name: "\(root)/byteorder", bytes: Array("little".utf8))
            for (i, tensor) in store.tensors.values.enumerated() {
                try tensor.withContiguousBytes { try zip.addStored(name: "\(root)/data/\(i)", bytes: $0) }
            }
            try zip.addStored(name: "\(root)/version", bytes: Array("3\n".utf8))
            try zip.addStored(name: "\(root)/.data/serialization_id",
                              bytes: Array(TorchCheckpointWriter.serializationID(pickle: pickle, store: store).utf8))
            try zip.finish()
        }
    }
}
