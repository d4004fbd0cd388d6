import TensorStore

/// NumPy `.npz` archives: a zip of `.npy` members, member `a.npy` holding array `a` (as
/// `numpy.load` names them). Reading goes through `ZipArchive`, the one zip reader `.pth` files use
/// too: its directory walk checks every offset and size against the file, stored members
/// (`np.savez`) become mapped storages without a copy, and deflated ones (`np.savez_compressed`)
/// are inflated against the read's `MemoryBudget`. Writing produces what `np.savez` does (stored
/// members) through the same zip writer, streaming each tensor into an `AtomicFileWriter`.
/// Store metadata has no place in an .npz and is not written.
public enum NPZ {
    /// Tensors in archive order, named after their members without `.npy`. What reading may
    /// allocate because the archive says so (inflated members, copies of their data) is bounded
    /// by `limits`; beyond it the read throws `NPZError.store(.memoryLimitExceeded)`.
    public static func read(path: String, limits: ReadLimits = .default) throws -> TensorStore {
        let archive = try npzErrors(path: path) { try ZipArchive(path: path, limits: limits) }
        return try withExtendedLifetime(archive) { try read(archive) }
    }

    static func read(_ archive: ZipArchive) throws -> TensorStore {
        let path = archive.path
        var store = TensorStore()
        for entry in archive.entries {
            if entry.name.hasSuffix("/") && entry.uncompressedSize == 0 { continue } // a directory entry holds nothing
            guard entry.name.hasSuffix(".npy") else { throw NPZError.notNPY(path: path, member: entry.name) }
            let name = String(entry.name.dropLast(4))
            guard store[name] == nil else { throw NPZError.duplicateName(path: path, name: name) }
            let tensor = try npzErrors(path: path) {
                let storage = try archive.storage(for: entry)
                // libzip checks an inflated member's CRC; a stored one is mapped unread, and
                // numpy.load checks it, so a damaged byte is refused here too.
                if entry.isStored {
                    var crc = ZipCRC32()
                    crc.update(storage.bytes)
                    guard crc.value == entry.crc32 else {
                        throw ZipError.readFailed(path: path, entry: entry.name, message: "CRC error: the data does not match its checksum")
                    }
                }
                return try NPY.decode(storage, name: "\(path):\(entry.name)", budget: archive.budget)
            }
            try store.insert(tensor, named: name)
        }
        return store
    }

    /// Zip and budget errors as NPZ errors, so every failure names the archive; a file that
    /// cannot be opened keeps the open's own message (`FIFO`, `No such file`).
    static func npzErrors<T>(path: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as ZipError {
            throw NPZError.zip(error)
        } catch let TensorStoreError.io(_, message) {
            throw NPZError.cannotOpen(path: path, message: message)
        } catch let error as TensorStoreError {
            throw NPZError.store(path: path, error)
        }
    }

    // MARK: writing

    /// Atomic write, like `np.savez`: one stored `<name>.npy` member per tensor, in store order,
    /// through the same zip writer `.pth` files use. Tensors NumPy cannot hold (bf16, float8) are
    /// refused by `NPY` before anything is written.
    public static func write(_ store: TensorStore, to path: String) throws {
        var members: [(name: String, header: [UInt8], tensor: Tensor)] = []
        for (name, tensor) in store.tensors {
            members.append((name + ".npy", try NPY.headerBytes(dtype: tensor.dtype, shape: tensor.shape), tensor))
        }
        try AtomicFileWriter.write(to: path) { w in
            var zip = ZipWriter(output: w, alignment: 1)
            for m in members {
                var crc = ZipCRC32()
                crc.update(m.header)
                m.tensor.withContiguousBytes { crc.update($0) }
                try zip.addStored(name: m.name, size: m.header.count + m.tensor.byteCount, crc32: crc.value) { out in
                    try out.write(m.header)
                    try out.write(m.tensor)
                }
            }
            try zip.finish()
        }
    }
}

public enum NPZError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, message: String)
    /// A member that is not an `.npy` array.
    case notNPY(path: String, member: String)
    /// The zip structure was refused (bounds, sizes, CRC, encryption, compression method).
    case zip(ZipError)
    case duplicateName(path: String, name: String)
    /// Reading would allocate more than the read's memory limit (`ReadLimits`), or a member's
    /// data does not make a valid tensor.
    case store(path: String, TensorStoreError)

    /// Member names come from the file: escaped, so a message stays one line.
    public var description: String {
        switch self {
        case let .cannotOpen(path, message):
            return "\(path): cannot open as an .npz (zip) archive: \(message)"
        case let .notNPY(path, member):
            return "\(path): member '\(member.escapedForMessage)' is not an .npy array; DinoKit reads .npz archives of arrays only"
        case let .zip(error): return error.description
        case let .duplicateName(path, name):
            return "\(path): array '\(name.escapedForMessage)' appears more than once"
        case let .store(path, error): return "\(path): \(error)"
        }
    }
}
