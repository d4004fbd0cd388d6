import TensorStore

/// What can go wrong loading a training state or running a step. Each case says which file,
/// tensor or setting is at fault and what was expected.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    /// A tensor a module needs is not in the store (`name` with its full prefix).
    case missingTensor(name: String, file: String)
    case tensorShape(name: String, file: String, shape: [Int], expected: [Int])
    case tensorDType(name: String, file: String, dtype: DType)
    /// A tensor under a module's prefix that the module does not have (a layout mismatch).
    case unexpectedTensor(name: String, file: String)
    /// config.json is missing a key, has the wrong type or an impossible value.
    case config(file: String, message: String)
    /// A step's inputs (crops, masks) do not fit the config.
    case stepInput(file: String, message: String)
    case missingFile(path: String)
    /// A numeric failure the official code would also hit (e.g. an exp overflow in Sinkhorn-Knopp).
    case numeric(String)

    public var description: String {
        switch self {
        case let .missingTensor(name, file):
            return "\(file): tensor '\(name)' is missing"
        case let .tensorShape(name, file, shape, expected):
            return "\(file): tensor '\(name)' has shape \(shape), expected \(expected)"
        case let .tensorDType(name, file, dtype):
            return "\(file): tensor '\(name)' is \(dtype), expected a floating-point type"
        case let .unexpectedTensor(name, file):
            return "\(file): tensor '\(name)' does not belong to the model the config describes"
        case let .config(file, message):
            return "\(file): \(message)"
        case let .stepInput(file, message):
            return "\(file): \(message)"
        case let .missingFile(path):
            return "\(path): no such file (a debug state holds config.json, initial.safetensors, step_<t>.npz, expected.json, grads_0.safetensors, final.safetensors)"
        case let .numeric(message):
            return message
        }
    }
}
