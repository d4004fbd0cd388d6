/// Why an export could not be made. Each case says what to change.
public enum ONNXExportError: Error, CustomStringConvertible, Equatable {
    case invalidOption(String)
    /// The weights do not describe a DINOv2 or DINOv3 backbone the exporter can build.
    case unsupportedModel(String)
    /// The requested input size does not fit the model (not a multiple of the patch size, ...).
    case invalidSize(String)
    case outOfMemory(String)
    /// The serialized model would exceed protobuf's 2 GB limit even with external data.
    case tooLarge(String)

    public var description: String {
        switch self {
        case let .invalidOption(s): return "invalid export option: \(s)"
        case let .unsupportedModel(s): return "cannot export this model: \(s)"
        case let .invalidSize(s): return "invalid input size: \(s)"
        case let .outOfMemory(s): return "out of memory while \(s)"
        case let .tooLarge(s): return s
        }
    }
}
