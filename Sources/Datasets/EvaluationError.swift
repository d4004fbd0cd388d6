/// Why an evaluation could not run: a dataset, feature file, cache or option that is not what it
/// must be. Each case names the file or option and says what the user can do.
/// It lives in Datasets, the lowest module that throws it (dataset readers, feature matrices,
/// k-NN), and keeps its name because callers and tests match on it across Evaluation and Training.
public enum EvaluationError: Error, CustomStringConvertible, Equatable {
    /// A file the dataset layout requires is not there.
    case missingFile(path: String, expected: String)
    /// A dataset file whose size or content does not fit its format.
    case badDataset(path: String, detail: String)
    /// Features or labels that cannot be used together (shapes, dtypes, counts).
    case badFeatures(what: String, detail: String)
    /// An option value that cannot be used.
    case invalidArgument(what: String, detail: String)
    /// The feature cache could not be read or written.
    case cache(path: String, detail: String)
    /// A file could not be read or written.
    case io(path: String, detail: String)
    /// Every input was skipped: there is nothing to write (`first` is the first skip's reason).
    case nothingProduced(out: String, inputs: Int, first: String)

    public var description: String {
        switch self {
        case let .missingFile(path, expected): return "\(path): missing (\(expected))"
        case let .badDataset(path, detail): return "\(path): \(detail)"
        case let .badFeatures(what, detail): return "\(what): \(detail)"
        case let .invalidArgument(what, detail): return "\(what): \(detail)"
        case let .cache(path, detail): return "feature cache \(path): \(detail)"
        case let .io(path, detail): return "\(path): \(detail)"
        case let .nothingProduced(out, inputs, first):
            return "\(out): not written: none of the \(inputs) input(s) could be read (first: \(first))"
        }
    }
}
