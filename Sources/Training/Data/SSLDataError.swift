/// What can go wrong turning a folder of images into SSL batches. Each case names the folder,
/// file or setting at fault and what the user can do about it.
public enum SSLDataError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The data folder is missing, not a folder, or cannot be listed.
    case folder(path: String, detail: String)
    /// No usable JPEG or PNG file was found (after dropping files whose headers are not images).
    case noImages(path: String, detail: String)
    /// A multi-crop or masking setting is out of range.
    case config(what: String, detail: String)
    /// Every image tried for one slot of a batch failed to decode.
    case unreadableBatch(step: Int, slot: Int, detail: String)

    public var description: String {
        switch self {
        case let .folder(path, detail): return "\(path): \(detail)"
        case let .noImages(path, detail): return "\(path): no usable images: \(detail)"
        case let .config(what, detail): return "invalid \(what): \(detail)"
        case let .unreadableBatch(step, slot, detail):
            return "step \(step), image \(slot) of the batch: no readable image found (\(detail)); remove the damaged files from the data folder"
        }
    }
}
