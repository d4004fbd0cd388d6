import TensorStore

/// Writes a `TensorStore` as the zip `.pth` `torch.save(state_dict, path)` would write: root folder
/// named after the file, `data.pkl` (protocol 2: an `OrderedDict` of `_rebuild_tensor_v2` calls
/// with the `_metadata` BUILD), `.format_version`, `.storage_alignment`, `byteorder`, one
/// 64-byte-aligned storage per tensor in `data/<i>`, `version`, `.data/serialization_id`.
/// Store metadata is not written: a state dict holds tensors only (`load_state_dict(strict=True)`
/// would reject anything else).
enum TorchCheckpointWriter {
    static func write(_ store: TensorStore, to path: String) throws {
        try write(root: stateDict(store), storages: store, to: path)
    }

    /// Writes `root` as data.pkl and the tensors of `store` as its storages, in order: `root`
    /// holds the state dict `stateDict(store)` makes, alone or inside a container.
    static func write(root: PickleValue, storages store: TensorStore, to path: String) throws {
        let pickle = try Pickler.pickle(root)
        let root = rootFolder(for: path)
        try AtomicFileWriter.write(to: path) { output in
            var zip = ZipWriter(output: output, alignment: 64)
            try zip.addStored(name: "\(root)/data.pkl", bytes: pickle)
            try zip.addStored(name: "\(root)/.format_version", bytes: Array("1".utf8))
            try zip.addStored(name: "\(root)/.storage_alignment", bytes: Array("64".utf8))
            try zip.addStored(name: "\(root)/byteorder", bytes: Array("little".utf8))
            for (i, tensor) in store.tensors.values.enumerated() {
                // Streams straight from the (mapped) storage when contiguous; one tensor at a time
                // otherwise. The pages read for it are then given back, so writing a checkpoint
                // holds one tensor, not all it has read.
                try tensor.withContiguousBytes { try zip.addStored(name: "\(root)/data/\(i)", bytes: $0) }
                tensor.dropResidentPages()
            }
            try zip.addStored(name: "\(root)/version", bytes: Array("3\n".utf8))
            try zip.addStored(name: "\(root)/.data/serialization_id", bytes: Array(serializationID(pickle: pickle, store: store).utf8))
            try zip.finish()
        }
    }

    /// `OrderedDict(name -> tensor)` with `_metadata = OrderedDict(module prefix -> {'version': 1})`.
    static func stateDict(_ store: TensorStore) -> PickleValue {
        var entries: [PickleDictEntry] = []
        var prefixes: [String] = []
        var seen: Set<String> = []
        for (i, (name, tensor)) in store.tensors.enumerated() {
            let storageClass = TorchDTypeNames.storageClass(tensor.dtype)
            let count = tensor.elementCount
            let ref = PickleStorageRef(key: String(i), storageClass: storageClass ?? "UntypedStorage",
                                       torchDType: storageClass == nil ? "uint8" : TorchDTypeNames.torchName(tensor.dtype),
                                       location: "cpu", numel: storageClass == nil ? count * tensor.dtype.size : count, view: nil)
            let t = PickleTensor(storage: ref, torchDType: TorchDTypeNames.torchName(tensor.dtype), storageOffset: 0,
                                 shape: tensor.shape.dims, strides: tensor.shape.contiguousStrides,
                                 requiresGrad: false, isParameter: false)
            entries.append(PickleDictEntry(key: .string(name), value: .tensor(t)))
            // Module prefixes in first-seen order, as Module.state_dict() visits them.
            var parts = name.split(separator: ".", omittingEmptySubsequences: false).dropLast().map(String.init)
            var chain = [""]
            var acc = ""
            while !parts.isEmpty {
                let p = parts.removeFirst()
                acc = acc.isEmpty ? p : acc + "." + p
                chain.append(acc)
            }
            for prefix in chain where seen.insert(prefix).inserted { prefixes.append(prefix) }
        }
        let metadata = PickleDict(kind: .orderedDict, entries: prefixes.map {
            PickleDictEntry(key: .string($0), value: .dict(PickleDict(entries: [PickleDictEntry(key: .string("version"), value: .int(1))])))
        })
        return .dict(PickleDict(kind: .orderedDict, entries: entries,
                                attributes: [PickleDictEntry(key: .string("_metadata"), value: .dict(metadata))]))
    }

    /// torch names the root folder after the file (`model.pth` -> `model/`).
    static func rootFolder(for path: String) -> String {
        var base = path.split(separator: "/").last.map(String.init) ?? ""
        if let dot = base.lastIndex(of: "."), dot != base.startIndex { base = String(base[..<dot]) }
        let safe = !base.isEmpty && base.utf8.count <= 200 && !base.contains("\\") && base != "." && base != ".."
        return safe ? base : "archive"
    }

    /// 40 decimal digits, as torch writes; derived from the content so equal stores give equal files.
    static func serializationID(pickle: [UInt8], store: TensorStore) -> String {
        var a: UInt64 = 0xCBF2_9CE4_8422_2325, b: UInt64 = 0x9E37_79B9_7F4A_7C15
        func mix(_ byte: UInt8) {
            a = (a ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
            b = (b ^ UInt64(byte)) &* 0xFF51_AFD7_ED55_8CCD
        }
        for byte in pickle { mix(byte) }
        for t in store.tensors.values {
            var n = UInt64(t.byteCount)
            for _ in 0..<8 { mix(UInt8(truncatingIfNeeded: n)); n >>= 8 }
        }
        func twenty(_ v: UInt64) -> String {
            let s = String(v)
            return String(repeating: "0", count: 20 - s.count) + s
        }
        return twenty(a) + twenty(b)
    }
}
