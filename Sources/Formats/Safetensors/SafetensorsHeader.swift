import OrderedCollections
import TensorStore

/// A validated safetensors header: what each tensor is and where its bytes lie. Parsing applies
/// every check of the reference implementation before anything is mapped, so `entries` can be
/// trusted: offsets are sorted, contiguous from 0, each span is exactly numel × element size, and
/// the last one ends at the end of the file.
public struct SafetensorsHeader: Sendable {
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let dtype: DType
        public let shape: Shape
        /// Byte range relative to the start of the data buffer (`dataStart`).
        public let dataOffsets: Range<Int>
    }

    /// The reference implementation's limit on the JSON header (MAX_HEADER_SIZE).
    public static let maxHeaderLength = 100_000_000

    /// N: bytes of JSON (with padding) after the 8-byte length.
    public let headerLength: Int
    /// Tensors in data-buffer order.
    public let entries: [Entry]
    public let metadata: OrderedDictionary<String, String>

    /// File offset of the data buffer.
    public var dataStart: Int { 8 + headerLength }

    /// Parses and validates the header of a safetensors file whose first bytes are `head` and whose
    /// total size is `fileSize`. `head` must hold at least the first `min(fileSize, 8 + N)` bytes.
    public static func parse(_ head: UnsafeRawBufferPointer, fileSize: Int, path: String) throws -> SafetensorsHeader {
        guard fileSize >= 8, head.count >= 8 else { throw SafetensorsError.fileTooSmall(path: path, size: fileSize) }
        let n64 = UInt64(littleEndian: head.loadUnaligned(as: UInt64.self))
        guard n64 <= UInt64(maxHeaderLength) else { throw SafetensorsError.headerTooLarge(path: path, length: n64) }
        let n = Int(n64)
        guard n <= fileSize - 8, n <= head.count - 8 else {
            throw SafetensorsError.headerBeyondFile(path: path, length: n, fileSize: fileSize)
        }
        let text = UnsafeRawBufferPointer(rebasing: head[8..<(8 + n)])
        if let bad = JSONReader.firstInvalidUTF8Offset(text) {
            throw SafetensorsError.headerNotUTF8(path: path, byteOffset: 8 + bad)
        }

        var decoder = HeaderDecoder(reader: JSONReader(text), path: path)
        let declared: [Declared]
        do {
            declared = try decoder.decode()
        } catch let e as JSONReader.SyntaxError {
            throw SafetensorsError.invalidJSON(path: path, byteOffset: 8 + e.offset, message: e.message)
        }
        let entries = try validateLayout(declared, bufferLength: fileSize - 8 - n, path: path)
        return SafetensorsHeader(headerLength: n, entries: entries, metadata: decoder.metadata)
    }

    /// A tensor as the header declares it, before the layout is checked.
    struct Declared {
        var name: String
        var dtype: DType
        var shape: [UInt64]
        var begin: Int
        var end: Int
        var index: Int
    }

    /// Orders tensors by offsets (as the reference does; header order is free) and checks that
    /// they tile the data buffer exactly.
    static func validateLayout(_ declared: [Declared], bufferLength: Int, path: String) throws -> [Entry] {
        // Ties (empty tensors sharing an offset) keep header order, so the result is deterministic.
        let sorted = declared.sorted { ($0.begin, $0.end, $0.index) < ($1.begin, $1.end, $1.index) }
        var entries: [Entry] = []
        entries.reserveCapacity(sorted.count)
        var previousEnd = 0
        var previousName: String? = nil
        for d in sorted {
            if d.begin != previousEnd {
                if let previousName {
                    if d.begin > previousEnd {
                        throw SafetensorsError.gap(path: path, tensor: d.name, begin: d.begin, previous: previousName, previousEnd: previousEnd)
                    }
                    throw SafetensorsError.overlap(path: path, tensor: d.name, begin: d.begin, previous: previousName, previousEnd: previousEnd)
                }
                throw SafetensorsError.firstOffsetNotZero(path: path, tensor: d.name, begin: d.begin)
            }
            guard d.end >= d.begin else {
                throw SafetensorsError.endBeforeBegin(path: path, tensor: d.name, begin: d.begin, end: d.end)
            }
            let dims = d.shape.map { Int(clamping: $0) }
            guard d.shape.allSatisfy({ $0 <= UInt64(Int.max) }),
                  let bytes = Shape(dims).checkedByteCount(elementSize: d.dtype.size) else {
                throw SafetensorsError.sizeOverflow(path: path, tensor: d.name, shape: d.shape, dtype: d.dtype.rawValue)
            }
            guard d.end - d.begin == bytes else {
                throw SafetensorsError.spanMismatch(path: path, tensor: d.name, span: d.end - d.begin, expected: bytes,
                                                    shape: Shape(dims), dtype: d.dtype.rawValue)
            }
            entries.append(Entry(name: d.name, dtype: d.dtype, shape: Shape(dims), dataOffsets: d.begin..<d.end))
            previousEnd = d.end
            previousName = d.name
        }
        guard previousEnd == bufferLength else {
            throw SafetensorsError.bufferLengthMismatch(path: path, tensor: previousName, lastEnd: previousEnd, bufferLength: bufferLength)
        }
        return entries
    }
}

/// Walks the header JSON: `{"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets"}, ...}`.
/// Fields other than those three are skipped, as the reference's serde decoder ignores them.
private struct HeaderDecoder {
    var reader: JSONReader
    let path: String
    var metadata: OrderedDictionary<String, String> = [:]

    static let metadataKey = "__metadata__"

    mutating func decode() throws -> [SafetensorsHeader.Declared] {
        let kind = try reader.peekKind()
        guard kind == .object else { throw SafetensorsError.headerNotObject(path: path, found: kind.description) }
        var seen = Set<String>()
        var sawMetadata = false
        var declared: [SafetensorsHeader.Declared] = []
        var cursor = try reader.beginObject()
        while let name = try reader.nextKey(&cursor) {
            if name == Self.metadataKey {
                guard !sawMetadata else {
                    throw SafetensorsError.invalidMetadata(path: path, key: nil, detail: "appears more than once")
                }
                sawMetadata = true
                try decodeMetadata()
                continue
            }
            guard seen.insert(name).inserted else { throw SafetensorsError.duplicateName(path: path, tensor: name) }
            declared.append(try decodeTensor(name, index: declared.count))
        }
        try reader.finish()
        return declared
    }

    mutating func decodeMetadata() throws {
        let kind = try reader.peekKind()
        if kind == .null { try reader.readNull(); return } // the reference reads null as "no metadata"
        guard kind == .object else {
            throw SafetensorsError.invalidMetadata(path: path, key: nil, detail: "expected an object, found \(kind)")
        }
        // Remember whether it looks like a tensor entry, to name that mistake precisely.
        let start = reader
        var cursor = try reader.beginObject()
        while let key = try reader.nextKey(&cursor) {
            let valueKind = try reader.peekKind()
            guard valueKind == .string else {
                if try Self.looksLikeTensor(start) { throw SafetensorsError.metadataNamedTensor(path: path) }
                throw SafetensorsError.invalidMetadata(path: path, key: key, detail: "value is \(valueKind), not a string")
            }
            let value = try reader.readString()
            guard metadata.updateValue(value, forKey: key) == nil else {
                throw SafetensorsError.duplicateMetadataKey(path: path, key: key)
            }
        }
    }

    static func looksLikeTensor(_ reader: JSONReader) throws -> Bool {
        var r = reader
        var cursor = try r.beginObject()
        while let key = try r.nextKey(&cursor) {
            if key == "dtype" || key == "shape" || key == "data_offsets" { return true }
            try r.skipValue()
        }
        return false
    }

    mutating func decodeTensor(_ name: String, index: Int) throws -> SafetensorsHeader.Declared {
        let kind = try reader.peekKind()
        guard kind == .object else {
            throw SafetensorsError.invalidTensorEntry(path: path, tensor: name, detail: "expected an object with dtype, shape and data_offsets, found \(kind)")
        }
        var dtype: DType?
        var shape: [UInt64]?
        var offsets: (Int, Int)?
        var cursor = try reader.beginObject()
        while let field = try reader.nextKey(&cursor) {
            switch field {
            case "dtype":
                guard dtype == nil else { throw duplicateField(name, field) }
                let k = try reader.peekKind()
                guard k == .string else { throw SafetensorsError.unknownDType(path: path, tensor: name, dtype: "(\(k))") }
                let text = try reader.readString()
                guard let d = DType(safetensorsName: text) else {
                    throw SafetensorsError.unknownDType(path: path, tensor: name, dtype: text)
                }
                dtype = d
            case "shape":
                guard shape == nil else { throw duplicateField(name, field) }
                shape = try decodeShape(name)
            case "data_offsets":
                guard offsets == nil else { throw duplicateField(name, field) }
                offsets = try decodeOffsets(name)
            default:
                try reader.skipValue()
            }
        }
        guard let dtype else { throw missingField(name, "dtype") }
        guard let shape else { throw missingField(name, "shape") }
        guard let offsets else { throw missingField(name, "data_offsets") }
        return .init(name: name, dtype: dtype, shape: shape, begin: offsets.0, end: offsets.1, index: index)
    }

    func duplicateField(_ name: String, _ field: String) -> SafetensorsError {
        .invalidTensorEntry(path: path, tensor: name, detail: "field '\(field)' appears more than once")
    }

    func missingField(_ name: String, _ field: String) -> SafetensorsError {
        .invalidTensorEntry(path: path, tensor: name, detail: "missing field '\(field)'")
    }

    mutating func decodeShape(_ name: String) throws -> [UInt64] {
        let kind = try reader.peekKind()
        guard kind == .array else { throw SafetensorsError.invalidShape(path: path, tensor: name, value: "(shape is \(kind), not an array)") }
        var dims: [UInt64] = []
        var cursor = try reader.beginArray()
        while try reader.nextElement(&cursor) {
            let k = try reader.peekKind()
            guard k == .number else { throw SafetensorsError.invalidShape(path: path, tensor: name, value: "(\(k))") }
            switch try reader.readNumber() {
            case let .unsigned(v): dims.append(v)
            case let .other(text): throw SafetensorsError.invalidShape(path: path, tensor: name, value: text)
            }
        }
        return dims
    }

    mutating func decodeOffsets(_ name: String) throws -> (Int, Int) {
        let kind = try reader.peekKind()
        guard kind == .array else { throw SafetensorsError.invalidDataOffsets(path: path, tensor: name, detail: "is \(kind)") }
        var values: [Int] = []
        var cursor = try reader.beginArray()
        while try reader.nextElement(&cursor) {
            guard values.count < 2 else {
                throw SafetensorsError.invalidDataOffsets(path: path, tensor: name, detail: "has more than two entries")
            }
            let k = try reader.peekKind()
            guard k == .number else { throw SafetensorsError.invalidDataOffsets(path: path, tensor: name, detail: "holds \(k)") }
            switch try reader.readNumber() {
            case let .unsigned(v):
                // Beyond Int.max it cannot lie inside any file.
                guard v <= UInt64(Int.max) else {
                    throw SafetensorsError.invalidDataOffsets(path: path, tensor: name, detail: "holds \(v), larger than any file")
                }
                values.append(Int(v))
            case let .other(text):
                throw SafetensorsError.invalidDataOffsets(path: path, tensor: name, detail: "holds \(text)")
            }
        }
        guard values.count == 2 else {
            throw SafetensorsError.invalidDataOffsets(path: path, tensor: name, detail: "has \(values.count) entries")
        }
        return (values[0], values[1])
    }
}
