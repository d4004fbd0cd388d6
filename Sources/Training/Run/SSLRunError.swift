/// What can go wrong setting up, running, resuming or exporting a training run.
public enum SSLRunError: Error, CustomStringConvertible, Equatable {
    /// A run setting (config.json, a command-line option) is missing or impossible.
    case config(file: String, message: String)
    /// The run folder is not usable (missing, not a run, no checkpoint).
    case runFolder(path: String, message: String)
    /// A checkpoint does not belong to this run or is damaged.
    case checkpoint(path: String, message: String)
    /// The starting weights cannot start a run.
    case weights(path: String, message: String)

    public var description: String {
        switch self {
        case let .config(file, message): return "\(file): \(message)"
        case let .runFolder(path, message): return "\(path): \(message)"
        case let .checkpoint(path, message): return "\(path): \(message)"
        case let .weights(path, message): return "\(path): \(message)"
        }
    }
}
