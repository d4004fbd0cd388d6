import TensorStore

/// Reading `torch.save` zip files, and turning a pickled object tree into a `TensorStore`
/// (shared with the legacy reader).
enum TorchCheckpointReader {
    static func readZip(_ file: MappedFile, limits: ReadLimits = .default) throws -> TorchCheckpointContents {
        try readZip(file, budget: MemoryBudget(limits))
    }

    static func readZip(_ file: MappedFile, budget: MemoryBudget) throws -> TorchCheckpointContents {
        try readZip(try zipErrors(path: file.path) { try ZipArchive(file: file, budget: budget) })
    }

    /// Reads from a zip directory already parsed (by `Checkpoint.read`'s sniffing), so the
    /// directory is walked once per read. The archive's memory budget is the read's.
    static func readZip(_ archive: ZipArchive) throws -> TorchCheckpointContents {
        try withExtendedLifetime(archive) { try readZipEntries(archive) }
    }

    private static func readZipEntries(_ archive: ZipArchive) throws -> TorchCheckpointContents {
        let path = archive.path
        // Any root folder name: torch uses the file's base name, or "archive" for buffers.
        guard let first = archive.entries.first, let slash = first.name.firstIndex(of: "/") else {
            throw TorchCheckpointError.notACheckpoint(path: path, detail: "zip archive without a root folder (not written by torch.save)")
        }
        let root = String(first.name[..<slash])
        func entry(_ name: String) -> ZipEntry? { archive.entry(named: "\(root)/\(name)") }

        guard let pickleEntry = entry("data.pkl") else {
            if entry("constants.pkl") != nil {
                throw TorchCheckpointError.notACheckpoint(path: path, detail: "a TorchScript archive (torch.jit.save), not a torch.save checkpoint")
            }
            throw TorchCheckpointError.missingEntry(path: path, entry: "\(root)/data.pkl")
        }
        var bigEndian = false
        if let order = entry("byteorder") {
            guard order.uncompressedSize <= 16 else {
                throw TorchCheckpointError.badByteOrder(path: path, value: "<\(order.uncompressedSize) bytes>")
            }
            let text = String(decoding: try zipErrors(path: path) { try archive.contents(of: order) }, as: UTF8.self)
            switch text {
            case "little": bigEndian = false
            case "big": bigEndian = true
            default: throw TorchCheckpointError.badByteOrder(path: path, value: text)
            }
        }

        let pickle = try zipErrors(path: path) { try archive.storage(for: pickleEntry) }
        // An inflated data.pkl is owned memory: keep it alive while the unpickler reads it.
        let value = try withExtendedLifetime(pickle) { try unpickle(pickle.bytes, path: path, part: pickleEntry.name) }
        var materializer = TensorMaterializer(path: path, bigEndian: bigEndian, budget: archive.budget) { key in
            guard let data = entry("data/\(key)") else { throw TorchCheckpointError.missingStorage(path: path, key: key) }
            return try zipErrors(path: path) { try archive.storage(for: data) }
        }
        let store = try collect(value, pickleBytes: pickle.count, materializer: &materializer)
        return TorchCheckpointContents(kind: .zip, store: store, root: value)
    }

    static func unpickle(_ bytes: UnsafeRawBufferPointer, startingAt start: Int = 0, path: String, part: String) throws -> (value: PickleValue, end: Int) {
        var unpickler = Unpickler(bytes, startingAt: start)
        do {
            let value = try unpickler.load()
            return (value, unpickler.position)
        } catch let error as PickleError {
            throw TorchCheckpointError.pickle(path: path, part: part, error)
        }
    }

    static func unpickle(_ bytes: UnsafeRawBufferPointer, path: String, part: String) throws -> PickleValue {
        try unpickle(bytes, startingAt: 0, path: path, part: part).value
    }

    /// Zip errors as checkpoint errors; a zip member over the memory budget names the file.
    static func zipErrors<T>(path archivePath: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as ZipError {
            throw TorchCheckpointError.zip(error)
        } catch let error as TensorStoreError {
            throw TorchCheckpointError.store(path: archivePath, error)
        }
    }

    /// Bytes of names the object tree may spell out, all names together, for a pickle of
    /// `pickleBytes`: a real checkpoint's names are about as long as the keys its pickle holds,
    /// while a small pickle that shares a dict under long keys at many levels spells out
    /// gigabytes, each name built by copying its parent's (seconds of work before the memory
    /// budget would stop it).
    static func nameBytesLimit(pickleBytes: Int) -> Int { Checked.sum(Checked.product(pickleBytes, 64) ?? Int.max, 1 << 20) ?? Int.max }

    /// Walks the object tree: tensors into the store under their path, scalars into the metadata.
    /// Every path is counted against `nameBytesLimit` before it is built, and charged to the
    /// read's memory budget.
    static func collect(_ root: PickleValue, pickleBytes: Int, materializer: inout TensorMaterializer) throws -> TensorStore {
        var store = TensorStore()
        let budget = materializer.budget
        let limit = nameBytesLimit(pickleBytes: pickleBytes)
        var nameBytes = 0
        func visit(_ value: PickleValue, _ path: String, isRoot: Bool) throws {
            func child(_ component: String) throws -> String {
                nameBytes += isRoot ? component.utf8.count : path.utf8.count + 1 + component.utf8.count
                guard nameBytes <= limit else {
                    throw TorchCheckpointError.namesTooLong(path: materializer.path, limit: limit)
                }
                let name = isRoot ? component : path + "." + component
                do {
                    try budget.charge(name.utf8.count, for: "the names of the object tree")
                } catch let error as TensorStoreError {
                    throw TorchCheckpointError.store(path: materializer.path, error)
                }
                return name
            }
            switch value {
            case let .tensor(t):
                let tensor = try materializer.tensor(t, name: path)
                guard store[path] == nil else {
                    throw TorchCheckpointError.duplicateTensorName(path: materializer.path, name: path)
                }
                store[path] = tensor
            case let .dict(d):
                for entry in d.entries { try visit(entry.value, try child(pathComponent(entry.key)), isRoot: false) }
            case let .list(items), let .tuple(items):
                for (i, item) in items.enumerated() { try visit(item, try child(String(i)), isRoot: false) }
            case .int, .bigInt, .float, .bool, .string:
                store.metadata[path] = value.scalarText
            case .none, .bytes, .set, .global, .storage, .object:
                break
            }
        }
        try visit(root, "", isRoot: true)
        return store
    }

    /// A dict key as a name component: strings as they are, numbers and booleans as Python prints them.
    static func pathComponent(_ key: PickleValue) -> String {
        if let text = key.scalarText { return text }
        return key.description
    }
}

/// Resolves tensor descriptions against storage bytes: checks each storage's claimed size against
/// its data, byte-swaps big-endian storages once per element width, and makes checked views.
struct TensorMaterializer {
    let path: String
    let bigEndian: Bool
    let load: (String) throws -> Storage
    /// What byte-swapping and overlapping views may allocate (shared with the zip's inflation).
    let budget: MemoryBudget
    private var raw: [String: Storage] = [:]
    private var swapped: [String: Storage] = [:]

    init(path: String, bigEndian: Bool, budget: MemoryBudget, load: @escaping (String) throws -> Storage) {
        self.path = path
        self.bigEndian = bigEndian
        self.budget = budget
        self.load = load
    }

    private mutating func storage(_ key: String) throws -> Storage {
        if let s = raw[key] { return s }
        let s = try load(key)
        raw[key] = s
        return s
    }

    mutating func tensor(_ t: PickleTensor, name: String) throws -> Tensor {
        guard let dtype = t.dtype else {
            throw TorchCheckpointError.unsupportedDType(path: path, tensor: name, dtype: t.torchDType)
        }
        let ref = t.storage
        guard let storageElement = TorchDTypeNames.elementSize(torchName: ref.torchDType) else {
            throw TorchCheckpointError.unsupportedDType(path: path, tensor: name, dtype: ref.torchDType)
        }
        var base = try storage(ref.key)
        guard let claimed = Checked.product(ref.numel, storageElement), claimed <= base.count else {
            throw TorchCheckpointError.storageTooSmall(path: path, key: ref.key,
                                                        claimedBytes: Checked.product(ref.numel, storageElement) ?? Int.max,
                                                        availableBytes: base.count)
        }

        // The elements the tensor may address: the whole storage, or a legacy view's range of it.
        var firstElement = 0
        var limitBytes = claimed
        if let view = ref.view {
            guard dtype.size == storageElement else {
                throw TorchCheckpointError.invalidTensor(path: path, tensor: name, detail: "views a \(ref.torchDType) storage as \(t.torchDType)")
            }
            // end <= numel, whose byte count was checked above, so end × storageElement cannot overflow.
            guard let end = Checked.sum(view.offset, view.numel), end <= ref.numel else {
                throw TorchCheckpointError.storageTooSmall(
                    path: path, key: view.key,
                    claimedBytes: Checked.sum(view.offset, view.numel).flatMap { Checked.product($0, storageElement) } ?? Int.max,
                    availableBytes: claimed)
            }
            firstElement = view.offset
            limitBytes = end * storageElement
        }
        do {
            guard let offset = Checked.sum(t.storageOffset, firstElement) else {
                throw TensorStoreError.invalidShape(what: "tensor", detail: "storage offset \(t.storageOffset) overflows")
            }
            // Checked before any byte-swapping: the view must lie in the storage (or legacy view range).
            let extent = try ViewExtent(shape: t.shape, strides: t.strides, offset: offset, elementSize: dtype.size)
            guard extent.endByte <= limitBytes else {
                throw TorchCheckpointError.invalidTensor(
                    path: path, tensor: name,
                    detail: "shape \(t.shape) stride \(t.strides) offset \(t.storageOffset) of \(dtype) reaches past storage '\(ref.key.escapedForMessage)' (\(limitBytes) bytes)")
            }
            if extent.amplifies {
                // Overlapping views are materialised one by one (convert, model binding): their
                // sizes add up, so they are charged to the read's budget, not only checked singly.
                try budget.charge(extent.byteCount, for: "materialising the overlapping view shape \(t.shape) strides \(t.strides) of \(dtype)")
            }
            if bigEndian && dtype.size > 1 {
                base = try swappedStorage(ref.key, base: base, width: dtype.size)
            }
            return try Tensor(storage: base, dtype: dtype, shape: Shape(t.shape), strides: t.strides, offset: offset,
                              limits: budget.limits)
        } catch let TensorStoreError.memoryLimitExceeded(what, bytes, limit) {
            throw TorchCheckpointError.store(
                path: path, .memoryLimitExceeded(what: "tensor '\(name.escapedForMessage)': \(what)", bytes: bytes, limit: limit))
        } catch let error as TensorStoreError {
            throw TorchCheckpointError.invalidTensor(path: path, tensor: name, detail: error.description)
        }
    }

    /// torch writes storages in the writer's byte order; a big-endian file is swapped into owned
    /// memory once per storage and element width.
    private mutating func swappedStorage(_ key: String, base: Storage, width: Int) throws -> Storage {
        let cacheKey = "\(key)#\(width)"
        if let s = swapped[cacheKey] { return s }
        try budget.charge(base.count, for: "byte-swapping storage '\(key.escapedForMessage)'")
        let out = Storage(byteCount: base.count)
        let src = base.bytes, dst = out.mutableBytes
        let n = base.count / width
        for i in 0..<n {
            let at = i * width
            for b in 0..<width { dst[at + b] = src[at + width - 1 - b] }
        }
        // A tail shorter than one element (not addressable by any tensor) is copied as is.
        for i in (n * width)..<base.count { dst[i] = src[i] }
        swapped[cacheKey] = out
        return out
    }
}
