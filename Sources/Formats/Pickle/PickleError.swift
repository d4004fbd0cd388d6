import TensorStore

/// Why a pickle was refused. Offsets are byte offsets into the pickle stream the unpickler was
/// given (for a `.pth` zip: into `data.pkl`; for a legacy file: into the file). Names from the
/// pickle are escaped when printed (`escapedForMessage`); composed messages escape their own.
public enum PickleError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A global that is not on the allow-list (what `torch.load(weights_only=True)` accepts).
    case forbiddenGlobal(module: String, name: String, offset: Int)
    /// An allowed global called in a way DinoKit does not interpret (quantized, sparse, nested tensors ...).
    case unsupportedCall(callable: String, offset: Int, detail: String)
    /// The stream ended inside an opcode or before STOP.
    case truncated(offset: Int, needed: Int)
    case unknownOpcode(UInt8, offset: Int)
    /// A real pickle opcode that a weights file never needs (extension registry, out-of-band buffers, text forms).
    case unsupportedOpcode(name: String, offset: Int)
    /// A bound on memo, nesting, containers or expanded size was hit.
    case limitExceeded(what: String, limit: Int, offset: Int)
    /// Structurally wrong input: stack underflow, wrong operand types, missing memo entries, bad UTF-8, cycles.
    case malformed(String, offset: Int)

    public var description: String {
        switch self {
        case let .forbiddenGlobal(module, name, offset):
            return "refusing pickle global '\("\(module).\(name)".escapedForMessage)' at byte \(offset): not on the allow-list "
                + "(DinoKit executes nothing; only what torch.load(weights_only=True) accepts is read)"
        case let .unsupportedCall(callable, offset, detail):
            return "unsupported use of '\(callable.escapedForMessage)' at byte \(offset): \(detail)"
        case let .truncated(offset, needed):
            return "pickle truncated at byte \(offset): \(needed) more byte(s) needed"
        case let .unknownOpcode(op, offset):
            return "unknown pickle opcode 0x\(String(op, radix: 16)) at byte \(offset) (corrupt file?)"
        case let .unsupportedOpcode(name, offset):
            return "pickle opcode \(name) at byte \(offset) is not supported in a weights file"
        case let .limitExceeded(what, limit, offset):
            return "pickle limit exceeded at byte \(offset): \(what) (limit \(limit))"
        case let .malformed(message, offset):
            return "malformed pickle at byte \(offset): \(message)"
        }
    }
}
