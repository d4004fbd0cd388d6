import TensorStore

/// What `TorchCheckpoint.read` found: every tensor by path, scalars as metadata, and the pickled
/// object itself (tensors in it are view descriptions; their bytes are the store's tensors).
public struct TorchCheckpointContents: Sendable {
    public enum Kind: String, Sendable { case zip, legacy }
    public var kind: Kind
    public var store: TensorStore
    public var root: PickleValue

    public init(kind: Kind, store: TensorStore, root: PickleValue) {
        self.kind = kind
        self.store = store
        self.root = root
    }
}

/// PyTorch `torch.save` files: the zip format (torch >= 1.6) and the legacy stream before it.
public enum TorchCheckpoint {
    /// Reads a `torch.save` file, zip (>= 1.6) or legacy. Every tensor found anywhere in the pickled
    /// object tree goes into the store, named by its path of dict keys / list indices joined with "."
    /// (a state dict gives its own keys; `{"teacher": sd}` gives "teacher.<key>"). Scalars (int,
    /// float, bool, str) at any path go into `store.metadata` as strings under their path. Storages
    /// of little-endian zip and legacy files are memory-mapped, not copied; tensors are views and
    /// may share a storage. Big-endian files are byte-swapped into owned storages. What the file
    /// makes DinoKit allocate (inflated members, swapped storages, names) is bounded by `limits`.
    public static func read(path: String, limits: ReadLimits = .default) throws -> TorchCheckpointContents {
        try read(path: path, budget: MemoryBudget(limits))
    }

    /// `read(path:limits:)` charging a budget the caller shares between files (an HF folder's shards).
    static func read(path: String, budget: MemoryBudget) throws -> TorchCheckpointContents {
        let file = try MappedFile(path: path)
        let head = UnsafeRawBufferPointer(rebasing: file.bytes[0..<Swift.min(file.count, 64)])
        if isZip(head) { return try withExtendedLifetime(file) { try TorchCheckpointReader.readZip(file, budget: budget) } }
        if isLegacy(head) { return try withExtendedLifetime(file) { try TorchCheckpointReader.readLegacy(file, budget: budget) } }
        if file.count >= 262, file.bytes[257..<262].elementsEqual(Array("ustar".utf8)) {
            throw TorchCheckpointError.notACheckpoint(
                path: path, detail: "a tar archive (torch < 0.4 legacy format), which DinoKit does not read; re-save it with a newer torch")
        }
        throw TorchCheckpointError.notACheckpoint(path: path, detail: "neither a zip archive nor a legacy torch.save stream")
    }

    /// Writes a state dict (an `OrderedDict` name -> tensor, with the `_metadata` BUILD torch writes)
    /// that `torch.load(path, weights_only=True)` accepts. See `TorchCheckpointWriter`.
    public static func write(_ store: TensorStore, to path: String) throws {
        try TorchCheckpointWriter.write(store, to: path)
    }

    /// A zip local file header: the first entry of a `torch.save` zip.
    public static func isZip(_ head: UnsafeRawBufferPointer) -> Bool {
        head.count >= 4 && head[0] == 0x50 && head[1] == 0x4B && head[2] == 0x03 && head[3] == 0x04
    }

    /// The little-endian bytes of torch's legacy magic number 0x1950a86a20f9469cfc6c.
    static let legacyMagic: [UInt8] = [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]

    /// A pickle PROTO opcode followed (after an optional FRAME) by LONG1 of the legacy magic number.
    public static func isLegacy(_ head: UnsafeRawBufferPointer) -> Bool {
        guard head.count >= 14, head[0] == 0x80, (2...5).contains(head[1]) else { return false }
        var at = 2
        if head[at] == 0x95 { at += 9 } // FRAME + 8-byte length (protocol >= 4)
        guard head.count >= at + 12, head[at] == 0x8A, head[at + 1] == 10 else { return false }
        return head[(at + 2)..<(at + 12)].elementsEqual(legacyMagic)
    }
}
