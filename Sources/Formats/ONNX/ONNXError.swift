import TensorStore

/// Why an ONNX file could not be read. Each case names the file and, where it applies, the byte
/// offset or the initializer, so the one-line CLI message says where to look. Initializer names
/// come from the file and are escaped (`escapedForMessage`), so a message stays one line.
public enum ONNXError: Error, CustomStringConvertible, Equatable {
    /// The protobuf encoding is broken at `offset` (truncated, bad varint, impossible length).
    case malformed(path: String, offset: Int, detail: String)
    /// A ModelProto without a graph.
    case missingGraph(path: String)
    /// An initializer whose element type DinoKit cannot represent.
    case unsupportedDataType(path: String, tensor: String, dataType: String)
    /// An initializer whose dims or data do not agree.
    case badTensor(path: String, tensor: String, detail: String)
    /// External data that is unsafe (absolute path, `..`, outside the model's folder) or whose
    /// offset/length fall outside the data file.
    case externalData(path: String, tensor: String, detail: String)
    /// Two initializers with one name.
    case duplicateInitializer(path: String, tensor: String)
    /// Decoding typed data would allocate more than the read's memory limit (`ReadLimits`).
    case store(path: String, TensorStoreError)

    public var description: String {
        switch self {
        case let .malformed(path, offset, detail):
            return "\(path): not a valid ONNX model at byte \(offset): \(detail)"
        case let .missingGraph(path):
            return "\(path): the ONNX model has no graph"
        case let .unsupportedDataType(path, tensor, dataType):
            return "\(path): initializer '\(tensor.escapedForMessage)' has element type \(dataType), which DinoKit does not read"
        case let .badTensor(path, tensor, detail):
            return "\(path): initializer '\(tensor.escapedForMessage)': \(detail)"
        case let .externalData(path, tensor, detail):
            return "\(path): external data of initializer '\(tensor.escapedForMessage)': \(detail)"
        case let .duplicateInitializer(path, tensor):
            return "\(path): initializer '\(tensor.escapedForMessage)' appears twice"
        case let .store(path, error):
            return "\(path): \(error)"
        }
    }
}
