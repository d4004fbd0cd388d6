/// Errors from the tensor store itself: bad views, I/O, conversions.
public enum TensorStoreError: Error, CustomStringConvertible, Equatable {
    case io(path: String, message: String)
    case outOfBounds(what: String, detail: String)
    case invalidShape(what: String, detail: String)
    case unsupportedConversion(from: DType, to: DType)
    case duplicateName(String)
    /// Reading would allocate more than `ReadLimits.memoryBytes` (see ReadLimits.swift).
    case memoryLimitExceeded(what: String, bytes: Int, limit: Int)

    public var description: String {
        switch self {
        case let .io(path, message): return "\(path): \(message)"
        case let .outOfBounds(what, detail): return "\(what) out of bounds: \(detail)"
        case let .invalidShape(what, detail): return "invalid shape for \(what): \(detail)"
        case let .unsupportedConversion(from, to): return "cannot convert \(from) to \(to)"
        case let .duplicateName(name): return "duplicate tensor name '\(name.escapedForMessage)'"
        case let .memoryLimitExceeded(what, bytes, limit):
            return "\(what) needs \(bytes) bytes, beyond the read memory limit of \(limit) bytes "
                + "(hostile file? if it is genuine, set \(ReadLimits.environmentVariable) to a larger size, e.g. 16G)"
        }
    }
}
