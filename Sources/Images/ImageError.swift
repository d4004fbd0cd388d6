/// Why an image could not be read or preprocessed. Every file case names the file, so a batch
/// that skips unreadable images can say which and why in one line each.
public enum ImageError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file could not be read at all (missing, a directory, permission).
    case unreadable(file: String, reason: String)
    /// The bytes are not a JPEG or PNG, or use a feature neither DinoKit nor PIL decodes
    /// (12-bit or lossless JPEG, 2-component JPEG, images above the pixel limit).
    case unsupported(file: String, detail: String)
    /// The data is damaged: bad markers or chunks, a CRC mismatch, an invalid compressed stream.
    case corrupt(file: String, detail: String)
    /// The data ends before the image does (PIL: "image file is truncated").
    case truncated(file: String, detail: String)
    /// A preprocessing parameter is unusable (a zero size, a zero std, a mean of the wrong length).
    case invalidArgument(what: String, detail: String)

    /// The file the error is about, if it is about a file.
    public var file: String? {
        switch self {
        case let .unreadable(file, _), let .unsupported(file, _), let .corrupt(file, _), let .truncated(file, _):
            return file
        case .invalidArgument:
            return nil
        }
    }

    public var description: String {
        switch self {
        case let .unreadable(file, reason): return "\(file): cannot read: \(reason)"
        case let .unsupported(file, detail): return "\(file): unsupported image: \(detail)"
        case let .corrupt(file, detail): return "\(file): corrupt image: \(detail)"
        case let .truncated(file, detail): return "\(file): truncated image: \(detail)"
        case let .invalidArgument(what, detail): return "invalid \(what): \(detail)"
        }
    }
}
