import TensorStore

/// Why a safetensors file was refused (reading) or could not be written. Each case names the file,
/// and where it applies the tensor and the offending value, so the one-line CLI message says what
/// to look at. The checks are those of the reference implementation (huggingface/safetensors),
/// plus duplicate names, which the reference silently collapses. Names and values taken from the
/// header are escaped (`escapedForMessage`) when printed, so a message stays one line.
public enum SafetensorsError: Error, CustomStringConvertible, Equatable {
    /// Shorter than the 8-byte header length.
    case fileTooSmall(path: String, size: Int)
    /// The header length exceeds the reference limit of 100,000,000 bytes.
    case headerTooLarge(path: String, length: UInt64)
    /// The header length runs past the end of the file.
    case headerBeyondFile(path: String, length: Int, fileSize: Int)
    /// The header is not UTF-8; `byteOffset` is from the start of the file.
    case headerNotUTF8(path: String, byteOffset: Int)
    /// The header is not well-formed JSON; `byteOffset` is from the start of the file.
    case invalidJSON(path: String, byteOffset: Int, message: String)
    /// The header is JSON but not an object.
    case headerNotObject(path: String, found: String)
    /// `__metadata__` is not an object of string values (key nil: the whole entry is wrong).
    case invalidMetadata(path: String, key: String?, detail: String)
    /// `__metadata__` holds tensor fields: the name is reserved and cannot be a tensor.
    case metadataNamedTensor(path: String)
    case duplicateMetadataKey(path: String, key: String)
    case duplicateName(path: String, tensor: String)
    /// A tensor entry that is not `{"dtype", "shape", "data_offsets"}` (not an object, missing or
    /// repeated field).
    case invalidTensorEntry(path: String, tensor: String, detail: String)
    case unknownDType(path: String, tensor: String, dtype: String)
    /// A shape entry that is not a non-negative integer (`value` as written).
    case invalidShape(path: String, tensor: String, value: String)
    /// `data_offsets` is not a pair of non-negative integers.
    case invalidDataOffsets(path: String, tensor: String, detail: String)
    /// The tensor with the lowest offsets does not start at byte 0 of the data buffer.
    case firstOffsetNotZero(path: String, tensor: String, begin: Int)
    /// Unused bytes between the previous tensor's end and this tensor's begin.
    case gap(path: String, tensor: String, begin: Int, previous: String, previousEnd: Int)
    /// This tensor begins before the previous tensor ends.
    case overlap(path: String, tensor: String, begin: Int, previous: String, previousEnd: Int)
    case endBeforeBegin(path: String, tensor: String, begin: Int, end: Int)
    /// numel × element size does not fit a machine integer.
    case sizeOverflow(path: String, tensor: String, shape: [UInt64], dtype: DTypeName)
    /// end - begin differs from numel × element size.
    case spanMismatch(path: String, tensor: String, span: Int, expected: Int, shape: Shape, dtype: DTypeName)
    /// The last tensor's end is not the end of the file (data missing or trailing bytes).
    case bufferLengthMismatch(path: String, tensor: String?, lastEnd: Int, bufferLength: Int)
    /// Writing: a tensor may not be called `__metadata__`.
    case reservedTensorName(path: String)
    /// Reading would allocate more than the read's memory limit (`ReadLimits`).
    case store(path: String, TensorStoreError)

    /// The safetensors spelling of a dtype, kept as text so errors can carry it without the enum.
    public typealias DTypeName = String

    public var description: String {
        switch self {
        case let .fileTooSmall(path, size):
            return "\(path): not a safetensors file: \(size) bytes, shorter than the 8-byte header length"
        case let .headerTooLarge(path, length):
            return "\(path): safetensors header length \(length) exceeds the limit of 100000000 bytes (corrupt or not safetensors)"
        case let .headerBeyondFile(path, length, fileSize):
            return "\(path): safetensors header of \(length) bytes runs past the end of the \(fileSize)-byte file (truncated?)"
        case let .headerNotUTF8(path, offset):
            return "\(path): safetensors header is not valid UTF-8 (byte offset \(offset))"
        case let .invalidJSON(path, offset, message):
            return "\(path): safetensors header is not valid JSON at byte offset \(offset): \(message)"
        case let .headerNotObject(path, found):
            return "\(path): safetensors header must be a JSON object, found \(found.escapedForMessage)"
        case let .invalidMetadata(path, key, detail):
            if let key { return "\(path): __metadata__ entry '\(key.escapedForMessage)' is invalid: \(detail) (metadata is string -> string only)" }
            return "\(path): __metadata__ is invalid: \(detail) (metadata is string -> string only)"
        case let .metadataNamedTensor(path):
            return "\(path): a tensor is named '__metadata__', which safetensors reserves for metadata"
        case let .duplicateMetadataKey(path, key):
            return "\(path): __metadata__ key '\(key.escapedForMessage)' appears more than once"
        case let .duplicateName(path, tensor):
            return "\(path): tensor '\(tensor.escapedForMessage)' appears more than once in the header"
        case let .invalidTensorEntry(path, tensor, detail):
            return "\(path): tensor '\(tensor.escapedForMessage)': \(detail)"
        case let .unknownDType(path, tensor, dtype):
            return "\(path): tensor '\(tensor.escapedForMessage)' has unknown dtype '\(dtype.escapedForMessage)' (known: \(DType.allCases.map(\.rawValue).joined(separator: ", ")))"
        case let .invalidShape(path, tensor, value):
            return "\(path): tensor '\(tensor.escapedForMessage)': shape entry \(value.escapedForMessage) is not a non-negative integer"
        case let .invalidDataOffsets(path, tensor, detail):
            return "\(path): tensor '\(tensor.escapedForMessage)': data_offsets \(detail); expected [begin, end] of non-negative integers"
        case let .firstOffsetNotZero(path, tensor, begin):
            return "\(path): tensor '\(tensor.escapedForMessage)' is first in the data buffer but begins at \(begin), not 0"
        case let .gap(path, tensor, begin, previous, previousEnd):
            return "\(path): tensor '\(tensor.escapedForMessage)' begins at \(begin) but '\(previous.escapedForMessage)' ends at \(previousEnd): \(begin - previousEnd) unused bytes between them"
        case let .overlap(path, tensor, begin, previous, previousEnd):
            return "\(path): tensor '\(tensor.escapedForMessage)' begins at \(begin), inside '\(previous.escapedForMessage)' which ends at \(previousEnd): overlapping data"
        case let .endBeforeBegin(path, tensor, begin, end):
            return "\(path): tensor '\(tensor.escapedForMessage)' has data_offsets [\(begin), \(end)]: end before begin"
        case let .sizeOverflow(path, tensor, shape, dtype):
            return "\(path): tensor '\(tensor.escapedForMessage)': shape \(shape) of \(dtype) overflows the element or byte count"
        case let .spanMismatch(path, tensor, span, expected, shape, dtype):
            return "\(path): tensor '\(tensor.escapedForMessage)' spans \(span) bytes but shape \(shape) of \(dtype) needs \(expected)"
        case let .bufferLengthMismatch(path, tensor, lastEnd, bufferLength):
            let who = tensor.map { "the last tensor '\($0.escapedForMessage)' ends" } ?? "the tensors end"
            let why = lastEnd > bufferLength ? "past the end of the file (truncated, or a lying header)" : "before the end of the file (trailing bytes)"
            return "\(path): \(who) at data offset \(lastEnd) but the data buffer holds \(bufferLength) bytes: \(why)"
        case let .reservedTensorName(path):
            return "\(path): cannot write a tensor named '__metadata__': safetensors reserves that name for metadata"
        case let .store(path, error):
            return "\(path): \(error)"
        }
    }
}
