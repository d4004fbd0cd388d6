import TensorStore

/// Why a PyTorch checkpoint could not be read or written. Every case names the file and what in it
/// was wrong (entry, storage key, tensor name, byte offset). Names taken from the file are
/// escaped (`escapedForMessage`) when printed, so a message stays one line.
public enum TorchCheckpointError: Error, CustomStringConvertible, Equatable {
    case notACheckpoint(path: String, detail: String)
    case missingEntry(path: String, entry: String)
    case zip(ZipError)
    /// The pickle in `part` (`archive/data.pkl`, or a section of a legacy file) was refused.
    case pickle(path: String, part: String, PickleError)
    case badByteOrder(path: String, value: String)
    case legacyHeader(path: String, detail: String)
    /// A storage key the pickle refers to has no data.
    case missingStorage(path: String, key: String)
    /// A storage claims more bytes than its data holds.
    case storageTooSmall(path: String, key: String, claimedBytes: Int, availableBytes: Int)
    case unsupportedDType(path: String, tensor: String, dtype: String)
    case invalidTensor(path: String, tensor: String, detail: String)
    case duplicateTensorName(path: String, name: String)
    /// The object tree's names, all together, would exceed `limit` bytes (`nameBytesLimit`).
    case namesTooLong(path: String, limit: Int)
    /// Reading would allocate more than the read's memory limit (`ReadLimits`).
    case store(path: String, TensorStoreError)

    public var description: String {
        switch self {
        case let .notACheckpoint(path, detail): return "\(path): not a PyTorch checkpoint: \(detail)"
        case let .missingEntry(path, entry): return "\(path): checkpoint has no '\(entry.escapedForMessage)' entry"
        case let .zip(error): return error.description
        case let .pickle(path, part, error): return "\(path) (\(part.escapedForMessage)): \(error)"
        case let .badByteOrder(path, value):
            return "\(path): byteorder entry is '\(String(value.prefix(40)).escapedForMessage)', expected 'little' or 'big'"
        case let .legacyHeader(path, detail): return "\(path): invalid legacy (pre-1.6) checkpoint: \(detail)"
        case let .missingStorage(path, key): return "\(path): storage '\(key.escapedForMessage)' is referenced but has no data"
        case let .storageTooSmall(path, key, claimed, available):
            return "\(path): storage '\(key.escapedForMessage)' claims \(claimed) bytes but its data holds \(available): truncated or hostile file"
        case let .unsupportedDType(path, tensor, dtype):
            return "\(path): tensor '\(tensor.escapedForMessage)' has dtype torch.\(dtype.escapedForMessage), which DinoKit does not store"
        case let .invalidTensor(path, tensor, detail): return "\(path): tensor '\(tensor.escapedForMessage)': \(detail)"
        case let .duplicateTensorName(path, name): return "\(path): two tensors are named '\(name.escapedForMessage)'"
        case let .namesTooLong(path, limit):
            return "\(path): the object tree's names exceed \(limit) bytes (64 × the pickle's size + 1 MiB): a pickle that shares containers under long keys?"
        case let .store(path, error): return "\(path): \(error)"
        }
    }
}
