import TensorStore

/// Why a zip archive could not be read or written. Offsets are byte offsets in the file. Entry
/// names come from the file and are escaped when printed (`escapedForMessage`).
public enum ZipError: Error, CustomStringConvertible, Equatable, Sendable {
    /// No end-of-central-directory record: not a zip, or cut short.
    case notAZip(path: String, detail: String)
    /// A record ends past the end of the file.
    case truncated(path: String, detail: String)
    /// A signature, count or size that does not hold together.
    case corrupt(path: String, detail: String)
    /// An offset or size that points outside the file (or outside the central directory).
    case outOfBounds(path: String, entry: String?, detail: String)
    case duplicateEntry(path: String, name: String)
    case unsupportedEntry(path: String, entry: String, detail: String)
    /// libzip refused to inflate a compressed entry.
    case readFailed(path: String, entry: String, message: String)

    public var description: String {
        switch self {
        case let .notAZip(path, detail): return "\(path): not a zip archive (\(detail))"
        case let .truncated(path, detail): return "\(path): zip archive truncated: \(detail)"
        case let .corrupt(path, detail): return "\(path): corrupt zip archive: \(detail)"
        case let .outOfBounds(path, entry, detail):
            return "\(path): zip \(entry.map { "entry '\($0.escapedForMessage)'" } ?? "structure") out of bounds: \(detail)"
        case let .duplicateEntry(path, name): return "\(path): zip entry '\(name.escapedForMessage)' appears more than once"
        case let .unsupportedEntry(path, entry, detail): return "\(path): zip entry '\(entry.escapedForMessage)': \(detail)"
        case let .readFailed(path, entry, message): return "\(path): cannot read zip entry '\(entry.escapedForMessage)': \(message)"
        }
    }
}
