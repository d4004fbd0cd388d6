import TensorStore

/// NumPy `.npy` files: goldens, features and labels travel in them. Reading maps the file and
/// returns a view (Fortran-order arrays become transposed-stride views; big-endian data is
/// byte-swapped into owned memory). Writing emits format 1.0 (2.0 when the header needs it).
public enum NPY {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59] // "\x93NUMPY"

    public static func isNPY(_ head: UnsafeRawBufferPointer) -> Bool {
        head.count >= 6 && head.prefix(6).elementsEqual(magic)
    }

    /// Maps the file; byte-swapping a big-endian array is the only allocation the file decides,
    /// charged to a budget of `limits`.
    public static func read(path: String, limits: ReadLimits = .default) throws -> Tensor {
        let file = try MappedFile(path: path)
        let header = try parseHeader(file.bytes, name: path)
        let storage = try Storage(file: file, offset: header.dataOffset, length: header.dataLength)
        return try makeTensor(header, storage: storage, name: path, budget: MemoryBudget(limits))
    }

    /// Decodes an in-memory `.npy`; the tensor owns a copy of the data. The copy (and a byte swap)
    /// is charged to a budget of `limits`.
    public static func decode(_ bytes: UnsafeRawBufferPointer, name: String, limits: ReadLimits = .default) throws -> Tensor {
        let header = try parseHeader(bytes, name: name)
        let budget = MemoryBudget(limits)
        return try makeTensor(header, storage: copiedData(bytes, header, name: name, budget: budget), name: name, budget: budget)
    }

    /// Decodes an `.npy` held in `storage` (an NPZ member). A mapped member is viewed in place;
    /// an inflated one has its data copied out (so the tensor's storage holds the data only, as
    /// for a read file), and that copy is charged to `budget` like the inflation itself.
    static func decode(_ storage: Storage, name: String, budget: MemoryBudget) throws -> Tensor {
        let header = try parseHeader(storage.bytes, name: name)
        let data: Storage
        switch storage.backing {
        case let .mapped(file):
            data = try Storage(file: file, offset: storage.fileOffset + header.dataOffset, length: header.dataLength)
        case .owned, .deferred:
            data = try copiedData(storage.bytes, header, name: name, budget: budget)
        }
        return try makeTensor(header, storage: data, name: name, budget: budget)
    }

    private static func copiedData(_ bytes: UnsafeRawBufferPointer, _ header: Header, name: String, budget: MemoryBudget) throws -> Storage {
        try budget.charge(header.dataLength, for: "copying the data of \(name.escapedForMessage)")
        return Storage(copying: UnsafeRawBufferPointer(rebasing: bytes[header.dataOffset..<(header.dataOffset + header.dataLength)]))
    }

    struct Header {
        var dtype: DType
        var bigEndian: Bool
        var fortranOrder: Bool
        var shape: Shape
        var dataOffset: Int
        var dataLength: Int
    }

    static func parseHeader(_ bytes: UnsafeRawBufferPointer, name: String) throws -> Header {
        guard bytes.count >= 10, isNPY(bytes) else { throw NPYError.notNPY(name) }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw NPYError.truncated(name, "header length") }
            headerLength = Int(bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self).littleEndian)
            headerStart = 12
        default:
            throw NPYError.unsupportedVersion(name, Int(major))
        }
        guard headerLength <= bytes.count - headerStart else { throw NPYError.truncated(name, "header of \(headerLength) bytes") }
        guard let text = String(validating: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self) else {
            throw NPYError.badHeader(name, "not UTF-8 text")
        }
        let dict = try PythonLiteralDict(text, name: name)
        guard let descr = dict.string("descr") else { throw NPYError.badHeader(name, "no 'descr'") }
        guard let fortran = dict.bool("fortran_order") else { throw NPYError.badHeader(name, "no 'fortran_order'") }
        guard let dims = dict.intTuple("shape") else { throw NPYError.badHeader(name, "no 'shape' tuple") }
        let (dtype, bigEndian) = try parseDescr(descr, name: name)
        let shape = Shape(dims)
        guard shape.checkedElementCount != nil else { throw NPYError.badHeader(name, "shape \(shape) overflows") }
        let length = shape.checkedByteCount(elementSize: dtype.size)
        let dataOffset = headerStart + headerLength
        guard let length, length <= bytes.count - dataOffset else {
            throw NPYError.truncated(name, "data: shape \(shape) of \(dtype) needs \(length.map(String.init) ?? "too many") bytes, \(bytes.count - dataOffset) present")
        }
        return Header(dtype: dtype, bigEndian: bigEndian, fortranOrder: fortran, shape: shape,
                      dataOffset: dataOffset, dataLength: length)
    }

    static func parseDescr(_ descr: String, name: String) throws -> (DType, Bool) {
        guard descr.count >= 2 else { throw NPYError.unsupportedDType(name, descr) }
        let order = descr.first!
        let code = String(descr.dropFirst())
        let table: [String: DType] = [
            "f2": .f16, "f4": .f32, "f8": .f64, "i1": .i8, "u1": .u8, "b1": .bool,
            "i2": .i16, "u2": .u16, "i4": .i32, "u4": .u32, "i8": .i64, "u8": .u64,
        ]
        guard "<>|=".contains(order), let dtype = table[code] else { throw NPYError.unsupportedDType(name, descr) }
        return (dtype, order == ">" && dtype.size > 1)
    }

    static func makeTensor(_ h: Header, storage: Storage, name: String, budget: MemoryBudget) throws -> Tensor {
        var storage = storage
        if h.bigEndian {
            try budget.charge(storage.count, for: "byte-swapping the big-endian data of \(name.escapedForMessage)")
            let swapped = Storage(byteCount: storage.count)
            let es = h.dtype.size
            let src = storage.bytes, dst = swapped.mutableBytes
            for e in stride(from: 0, to: src.count, by: es) {
                for b in 0..<es { dst[e + b] = src[e + es - 1 - b] }
            }
            storage = swapped
        }
        if h.fortranOrder && h.shape.rank > 1 {
            // Column-major: the first index varies fastest.
            var strides = [Int](repeating: 1, count: h.shape.rank)
            // Checked: with a zero dimension the element count is 0 whatever the others are, so
            // the strides of (0, 2^40, 2^40, 2^40) overflow although the shape was accepted.
            for i in 1..<h.shape.rank {
                guard let s = Checked.product(strides[i - 1], Swift.max(h.shape[i - 1], 1)) else {
                    throw NPYError.badHeader(name, "Fortran-order strides of shape \(h.shape) overflow")
                }
                strides[i] = s
            }
            return try Tensor(storage: storage, dtype: h.dtype, shape: h.shape, strides: strides, limits: budget.limits)
        }
        return try Tensor(storage: storage, dtype: h.dtype, shape: h.shape, limits: budget.limits)
    }

    // MARK: writing

    static func descr(_ dtype: DType) throws -> String {
        switch dtype {
        case .f16: return "<f2"
        case .f32: return "<f4"
        case .f64: return "<f8"
        case .i8: return "|i1"
        case .u8: return "|u1"
        case .bool: return "|b1"
        case .i16: return "<i2"
        case .u16: return "<u2"
        case .i32: return "<i4"
        case .u32: return "<u4"
        case .i64: return "<i8"
        case .u64: return "<u8"
        case .bf16, .f8e4m3, .f8e5m2: throw NPYError.unsupportedDType("(writing)", dtype.rawValue + " has no NumPy dtype")
        }
    }

    /// The header bytes (magic through the newline) for a C-order array.
    static func headerBytes(dtype: DType, shape: Shape) throws -> [UInt8] {
        let dims = shape.dims.map(String.init)
        let tuple = dims.count == 1 ? "(\(dims[0]),)" : "(" + dims.joined(separator: ", ") + ")"
        var dict = "{'descr': '\(try descr(dtype))', 'fortran_order': False, 'shape': \(tuple), }"
        // Pad with spaces so magic + version + length + dict + "\n" is a multiple of 64.
        var prefix = 10
        if (prefix + dict.utf8.count + 1 + 63) / 64 * 64 - prefix > Int(UInt16.max) { prefix = 12 }
        let total = (prefix + dict.utf8.count + 1 + 63) / 64 * 64
        dict += String(repeating: " ", count: total - prefix - dict.utf8.count - 1) + "\n"
        var out = magic
        let n = dict.utf8.count
        if prefix == 10 {
            out += [1, 0, UInt8(n & 0xFF), UInt8(n >> 8)]
        } else {
            out += [2, 0] + withUnsafeBytes(of: UInt32(n).littleEndian, Array.init)
        }
        return out + Array(dict.utf8)
    }

    public static func encode(_ tensor: Tensor) throws -> [UInt8] {
        var out = try headerBytes(dtype: tensor.dtype, shape: tensor.shape)
        tensor.withContiguousBytes { out.append(contentsOf: $0) }
        return out
    }

    /// Atomic write of one array.
    public static func write(_ tensor: Tensor, to path: String) throws {
        let header = try headerBytes(dtype: tensor.dtype, shape: tensor.shape)
        try AtomicFileWriter.write(to: path) { w in
            try w.write(header)
            try w.write(tensor)
        }
    }
}

public enum NPYError: Error, CustomStringConvertible, Equatable {
    case notNPY(String)
    case unsupportedVersion(String, Int)
    case truncated(String, String)
    case badHeader(String, String)
    case unsupportedDType(String, String)

    /// Header text is file content: escaped here, once, so no case can echo a newline, a
    /// terminal escape or raw binary into the one-line message.
    public var description: String {
        switch self {
        case let .notNPY(name): return "\(name.escapedForMessage): not a .npy file (no \\x93NUMPY magic)"
        case let .unsupportedVersion(name, v): return "\(name.escapedForMessage): unsupported .npy format version \(v)"
        case let .truncated(name, what): return "\(name.escapedForMessage): truncated \(what.escapedForMessage)"
        case let .badHeader(name, why): return "\(name.escapedForMessage): bad .npy header: \(why.escapedForMessage)"
        case let .unsupportedDType(name, d): return "\(name.escapedForMessage): unsupported dtype \(d.escapedForMessage)"
        }
    }
}

/// The tiny subset of Python literal syntax an .npy header uses:
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
struct PythonLiteralDict {
    enum Value { case string(String), bool(Bool), ints([Int]) }
    var values: [String: Value] = [:]

    init(_ text: String, name: String) throws {
        var s = Substring(text)
        func skipSpace() { s = s.drop(while: { $0 == " " || $0 == "\n" || $0 == "\t" }) }
        func expect(_ c: Character) throws {
            skipSpace()
            guard s.first == c else { throw NPYError.badHeader(name, "expected '\(c)' in \(text.prefix(120))") }
            s = s.dropFirst()
        }
        func quoted() throws -> String {
            skipSpace()
            guard let q = s.first, q == "'" || q == "\"" else { throw NPYError.badHeader(name, "expected a string") }
            s = s.dropFirst()
            guard let end = s.firstIndex(of: q) else { throw NPYError.badHeader(name, "unterminated string") }
            let v = String(s[..<end])
            s = s[s.index(after: end)...]
            return v
        }
        try expect("{")
        while true {
            skipSpace()
            if s.first == "}" { break }
            let key = try quoted()
            try expect(":")
            skipSpace()
            if s.first == "'" || s.first == "\"" {
                values[key] = .string(try quoted())
            } else if s.hasPrefix("True") {
                values[key] = .bool(true); s = s.dropFirst(4)
            } else if s.hasPrefix("False") {
                values[key] = .bool(false); s = s.dropFirst(5)
            } else if s.first == "(" {
                s = s.dropFirst()
                var ints: [Int] = []
                while true {
                    skipSpace()
                    if s.first == ")" { s = s.dropFirst(); break }
                    let digits = s.prefix(while: { $0.isNumber })
                    guard !digits.isEmpty, digits.count <= 18, let v = Int(digits) else {
                        throw NPYError.badHeader(name, "bad shape entry")
                    }
                    ints.append(v)
                    s = s.dropFirst(digits.count)
                    skipSpace()
                    if s.first == "," { s = s.dropFirst() }
                    guard ints.count <= 64 else { throw NPYError.badHeader(name, "too many dimensions") }
                }
                values[key] = .ints(ints)
            } else {
                throw NPYError.badHeader(name, "unsupported value for '\(key)'")
            }
            skipSpace()
            if s.first == "," { s = s.dropFirst() }
        }
    }

    func string(_ k: String) -> String? { if case let .string(v)? = values[k] { return v }; return nil }
    func bool(_ k: String) -> Bool? { if case let .bool(v)? = values[k] { return v }; return nil }
    func intTuple(_ k: String) -> [Int]? { if case let .ints(v)? = values[k] { return v }; return nil }
}
