import TensorStore

/// safetensors files (huggingface/safetensors): an 8-byte little-endian header length N, N bytes of
/// JSON describing each tensor, then the tensors' bytes back to back.
///
/// Reading maps the file and validates the header completely (`SafetensorsHeader`) before any
/// tensor is made; tensors are views into the mapping. A tensor whose bytes are not aligned to its
/// element size (files whose writer did not pad the header) is copied into aligned memory instead,
/// as the reference's torch loader does, so no consumer ever sees a misaligned Float pointer.
///
/// Writing produces what the reference writer produces: tensors sorted by dtype (largest
/// alignment first, in the reference's dtype order) then by name, a compact JSON header padded with
/// spaces to a multiple of 8, the store's metadata as `__metadata__` when there is any.
public enum Safetensors {
    static let metadataKey = "__metadata__"

    /// Reads and validates `path`; tensors are views into its memory mapping.
    public static func read(path: String, limits: ReadLimits = .default) throws -> TensorStore {
        try read(file: MappedFile(path: path), limits: limits)
    }

    /// Tensors in data-buffer order, `__metadata__` as the store's metadata. A tensor whose data
    /// is not aligned for its dtype is copied, and those copies are charged to a budget of `limits`.
    public static func read(file: MappedFile, limits: ReadLimits = .default) throws -> TensorStore {
        try read(file: file, budget: MemoryBudget(limits))
    }

    /// `read(file:limits:)` charging a budget the caller shares between files (an HF folder's shards).
    static func read(file: MappedFile, budget: MemoryBudget) throws -> TensorStore {
        let header = try SafetensorsHeader.parse(file.bytes, fileSize: file.count, path: file.path)
        var store = TensorStore()
        store.metadata = header.metadata
        for entry in header.entries {
            let offset = header.dataStart + entry.dataOffsets.lowerBound
            let length = entry.dataOffsets.count
            let storage: Storage
            if let base = file.bytes.baseAddress, (Int(bitPattern: base) + offset) % entry.dtype.size != 0 {
                do {
                    try budget.charge(length, for: "copying the misaligned data of tensor '\(entry.name.escapedForMessage)'")
                } catch let error as TensorStoreError {
                    throw SafetensorsError.store(path: file.path, error)
                }
                storage = Storage(copying: UnsafeRawBufferPointer(rebasing: file.bytes[offset..<(offset + length)]))
            } else {
                storage = try Storage(file: file, offset: offset, length: length)
            }
            try store.insert(Tensor(storage: storage, dtype: entry.dtype, shape: entry.shape), named: entry.name)
        }
        return store
    }

    /// The validated header alone (for `inspect`: no tensor is made).
    public static func readHeader(file: MappedFile) throws -> SafetensorsHeader {
        try SafetensorsHeader.parse(file.bytes, fileSize: file.count, path: file.path)
    }

    /// Content sniff: a header length followed by '{'. `head` is the file's first bytes (16 are
    /// enough). The length is not judged here: a file whose length is absurd (past the file or
    /// the 100 MB limit) is still recognised, so reading it says what is wrong with the length
    /// instead of calling it an unknown format.
    public static func isSafetensors(_ head: UnsafeRawBufferPointer, fileSize: Int) -> Bool {
        guard head.count >= 9, fileSize >= 10 else { return false }
        let n = UInt64(littleEndian: head.loadUnaligned(as: UInt64.self))
        guard n >= 2 else { return false }
        // The reference accepts leading JSON whitespace; look past it within what we were given.
        var i = 8
        let end = min(head.count, 8 + Int(min(n, UInt64(head.count))))
        while i < end, [0x20, 0x09, 0x0A, 0x0D].contains(head[i]) { i += 1 }
        return i < end && head[i] == UInt8(ascii: "{")
    }

    // MARK: writing

    /// Atomic write of `store` (temporary file beside `path`, fsync, rename). Tensor bytes are
    /// streamed from their storages; non-contiguous tensors are materialised one at a time.
    public static func write(_ store: TensorStore, to path: String) throws {
        try AtomicFileWriter.write(to: path) { try write(store, into: $0) }
    }

    /// The file's bytes into an open atomic writer, which the caller commits (an HF folder commits
    /// its shards together).
    static func write(_ store: TensorStore, into w: AtomicFileWriter) throws {
        let (header, ordered) = try prepare(store, path: w.path)
        try w.write(header)
        // Empty tensors have no bytes (and need no materialising).
        for tensor in ordered where tensor.elementCount > 0 {
            try w.write(tensor)
        }
    }

    /// The whole file in memory (for small stores and tests).
    public static func encode(_ store: TensorStore) throws -> [UInt8] {
        let (header, ordered) = try prepare(store, path: "(in memory)")
        var out = header
        out.reserveCapacity(header.count + ordered.reduce(0) { $0 + $1.byteCount })
        for tensor in ordered where tensor.elementCount > 0 { tensor.withContiguousBytes { out.append(contentsOf: $0) } }
        return out
    }

    /// The reference writer's order: dtype descending in its enum order (which `DType` mirrors;
    /// roughly alignment descending), then name by bytes.
    static func writeOrder(_ store: TensorStore) -> [(name: String, tensor: Tensor)] {
        let rank = Dictionary(uniqueKeysWithValues: DType.allCases.enumerated().map { ($1, $0) })
        return store.tensors.map { (name: $0.key, tensor: $0.value) }.sorted { a, b in
            let ra = rank[a.tensor.dtype] ?? 0, rb = rank[b.tensor.dtype] ?? 0
            if ra != rb { return ra > rb }
            return a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
        }
    }

    /// The 8-byte length plus padded JSON header, and the tensors in data order.
    static func prepare(_ store: TensorStore, path: String) throws -> (header: [UInt8], tensors: [Tensor]) {
        guard store[metadataKey] == nil else { throw SafetensorsError.reservedTensorName(path: path) }
        let ordered = writeOrder(store)
        var json: [UInt8] = [UInt8(ascii: "{")]
        var needsComma = false
        if !store.metadata.isEmpty {
            appendJSONString(metadataKey, to: &json)
            json += Array(":{".utf8)
            for (i, (key, value)) in store.metadata.enumerated() {
                if i > 0 { json.append(UInt8(ascii: ",")) }
                appendJSONString(key, to: &json)
                json.append(UInt8(ascii: ":"))
                appendJSONString(value, to: &json)
            }
            json.append(UInt8(ascii: "}"))
            needsComma = true
        }
        var offset = 0
        for (name, tensor) in ordered {
            if needsComma { json.append(UInt8(ascii: ",")) }
            needsComma = true
            let end = offset + tensor.byteCount
            appendJSONString(name, to: &json)
            json += Array(":{\"dtype\":\"\(tensor.dtype.safetensorsName)\",\"shape\":[".utf8)
            json += Array(tensor.shape.dims.map(String.init).joined(separator: ",").utf8)
            json += Array("],\"data_offsets\":[\(offset),\(end)]}".utf8)
            offset = end
        }
        json.append(UInt8(ascii: "}"))
        // Pad so the data buffer starts 8-byte aligned (8 + N is a multiple of 8).
        json += [UInt8](repeating: UInt8(ascii: " "), count: (8 - json.count % 8) % 8)
        let n = UInt64(json.count).littleEndian
        let header = withUnsafeBytes(of: n, Array.init) + json
        return (header, ordered.map(\.tensor))
    }

    /// A JSON string as serde_json writes it: '"' and '\\' escaped, control characters as short
    /// escapes or \u00xx, everything else (including non-ASCII) as raw UTF-8.
    static func appendJSONString(_ s: String, to out: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x08: out += [UInt8(ascii: "\\"), UInt8(ascii: "b")]
            case 0x09: out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0x0A: out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0C: out += [UInt8(ascii: "\\"), UInt8(ascii: "f")]
            case 0x0D: out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0..<0x20: out += Array("\\u00".utf8) + [hex[Int(b >> 4)], hex[Int(b & 0xF)]]
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
