import TensorStore

/// The legacy `torch.save` stream (torch < 1.6, or `_use_new_zipfile_serialization=False`): five
/// pickles in a row (magic number, protocol version 1001, sys_info, the object, the sorted list of
/// storage keys), then for each key a little-endian int64 element count and the raw bytes, always
/// little-endian. Storages are mapped in place (they are unaligned; readers load unaligned).
extension TorchCheckpointReader {
    static func readLegacy(_ file: MappedFile, limits: ReadLimits = .default) throws -> TorchCheckpointContents {
        try readLegacy(file, budget: MemoryBudget(limits))
    }

    static func readLegacy(_ file: MappedFile, budget: MemoryBudget) throws -> TorchCheckpointContents {
        let path = file.path
        let bytes = file.bytes
        var position = 0
        func next(_ part: String) throws -> PickleValue {
            let (value, end) = try unpickle(bytes, startingAt: position, path: path, part: "legacy \(part) at byte \(position)")
            position = end
            return value
        }

        guard case let .bigInt(magic) = try next("magic number"), magic == TorchCheckpoint.legacyMagic else {
            throw TorchCheckpointError.legacyHeader(path: path, detail: "wrong magic number")
        }
        let version = try next("protocol version")
        guard version == .int(1001) else {
            throw TorchCheckpointError.legacyHeader(path: path, detail: "protocol version \(version.scalarText.map { String($0.prefix(40)).escapedForMessage } ?? version.kindName), expected 1001")
        }
        guard case .dict = try next("sys_info") else {
            throw TorchCheckpointError.legacyHeader(path: path, detail: "sys_info is not a dict")
        }
        let objectStart = position
        let value = try next("object pickle")
        let objectBytes = position - objectStart
        guard let keyValues = try next("storage key list").sequenceItems else {
            throw TorchCheckpointError.legacyHeader(path: path, detail: "the storage key list is not a list")
        }

        // Element sizes come from the first reference to each key, as torch's loader takes them.
        var references: [String: PickleStorageRef] = [:]
        collectStorages(value) { ref in
            if references[ref.key] == nil { references[ref.key] = ref }
        }

        var storages: [String: Storage] = [:]
        for keyValue in keyValues {
            let key: String
            switch keyValue {
            case let .string(s): key = s
            case let .int(i): key = String(i)
            default: throw TorchCheckpointError.legacyHeader(path: path, detail: "storage key \(keyValue.kindName) is not a string")
            }
            guard let ref = references[key] else {
                throw TorchCheckpointError.legacyHeader(path: path, detail: "storage '\(key.escapedForMessage)' has data but no tensor refers to it")
            }
            guard let elementSize = TorchDTypeNames.elementSize(torchName: ref.torchDType) else {
                throw TorchCheckpointError.unsupportedDType(path: path, tensor: "storage \(key)", dtype: ref.torchDType)
            }
            guard bytes.count - position >= 8 else {
                throw TorchCheckpointError.storageTooSmall(path: path, key: key, claimedBytes: 8, availableBytes: bytes.count - position)
            }
            var count: UInt64 = 0
            for i in (0..<8).reversed() { count = count << 8 | UInt64(bytes[position + i]) }
            position += 8
            let available = bytes.count - position
            let length = count <= UInt64(Int.max) ? Checked.product(Int(count), elementSize) : nil
            guard let length, length <= available else {
                throw TorchCheckpointError.storageTooSmall(path: path, key: key, claimedBytes: length ?? Int.max,
                                                            availableBytes: available)
            }
            guard storages[key] == nil else {
                throw TorchCheckpointError.legacyHeader(path: path, detail: "storage '\(key.escapedForMessage)' is listed twice")
            }
            storages[key] = try Storage(file: file, offset: position, length: length)
            position += length
        }

        var materializer = TensorMaterializer(path: path, bigEndian: false, budget: budget) { key in
            guard let s = storages[key] else { throw TorchCheckpointError.missingStorage(path: path, key: key) }
            return s
        }
        let store = try collect(value, pickleBytes: objectBytes, materializer: &materializer)
        return TorchCheckpointContents(kind: .legacy, store: store, root: value)
    }

    /// Every storage reference in a value, tensors' included. Depth is bounded by the unpickler.
    static func collectStorages(_ value: PickleValue, _ found: (PickleStorageRef) -> Void) {
        switch value {
        case let .storage(s): found(s)
        case let .tensor(t): found(t.storage)
        case let .list(items), let .tuple(items), let .set(items): for v in items { collectStorages(v, found) }
        case let .dict(d): for e in d.entries { collectStorages(e.key, found); collectStorages(e.value, found) }
        case let .object(o): for v in o.args { collectStorages(v, found) }
        default: break
        }
    }
}
