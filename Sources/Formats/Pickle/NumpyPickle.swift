import TensorStore

/// Pickles of plain data holding NumPy arrays — the CIFAR-10 "python version" batches, written by
/// Python 2's cPickle (`numpy.core.multiarray._reconstruct`, data as a latin-1 BINSTRING) or
/// re-saved by Python 3 / NumPy 2 (`numpy._core…`, protocol 5's `_frombuffer`).
///
/// The NumPy globals are allowed for this reader only (`Unpickler.extraGlobals`); the default
/// allow-list stays torch's. Nothing is executed: `_reconstruct`, `ndarray`, `dtype` and
/// `_frombuffer` are kept as inert `PickleValue.object`s by the unpickler, and `array(_:)`
/// reads their arguments and state as a description of bytes, checking every size first.
public enum NumpyPickle {
    /// The globals a NumPy array pickle names, under NumPy 1 and NumPy 2 module names.
    public static let globals: Set<String> = [
        "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
        "numpy.core.numeric._frombuffer", "numpy._core.numeric._frombuffer",
        "numpy.ndarray", "numpy.dtype",
    ]

    /// Unpickles `bytes` with the NumPy globals allowed.
    public static func unpickle(_ bytes: [UInt8]) throws -> PickleValue {
        try bytes.withUnsafeBytes { buffer in
            var u = Unpickler(buffer)
            u.extraGlobals = globals
            return try u.load()
        }
    }

    /// A NumPy array read out of a pickled value: dtype (`'u1'`, `'<f4'`, ...), C-order shape and
    /// the raw element bytes in that order.
    public struct Array: Sendable, Equatable {
        public var dtype: DType
        public var shape: [Int]
        public var bytes: [UInt8]
        public var elementCount: Int { shape.reduce(1, *) }
    }

    /// Interprets `value` as a pickled ndarray, or throws `NumpyPickleError`.
    public static func array(_ value: PickleValue) throws -> Array {
        guard case let .object(call) = value else { throw NumpyPickleError.notAnArray("\(value.kindName)") }
        switch call.name {
        case "_reconstruct": return try reconstructed(call)
        case "_frombuffer": return try fromBuffer(call)
        default: throw NumpyPickleError.notAnArray("\(call.module).\(call.name)(...)")
        }
    }

    /// `_reconstruct(ndarray, (0,), b'b')` then BUILD with
    /// `(version, shape, dtype, is_fortran, data)` (`ndarray.__setstate__`).
    private static func reconstructed(_ call: PickleObject) throws -> Array {
        guard let cls = call.args.first, case let .global(_, clsName) = cls, clsName == "ndarray" else {
            throw NumpyPickleError.malformed("_reconstruct of something other than numpy.ndarray")
        }
        guard let state = call.state?.sequenceItems, state.count == 5 || state.count == 4 else {
            throw NumpyPickleError.malformed("ndarray state is not (version, shape, dtype, is_fortran, data)")
        }
        // Version 1 has a leading version number; the oldest form omits it.
        let fields = state.count == 5 ? Swift.Array(state.dropFirst()) : state
        let shape = try dims(fields[0])
        let dtype = try self.dtype(fields[1])
        let fortran: Bool
        switch fields[2] {
        case let .bool(b): fortran = b
        case let .int(i): fortran = i != 0
        default: throw NumpyPickleError.malformed("is_fortran is not a bool")
        }
        let data = try rawBytes(fields[3])
        return try made(dtype: dtype, shape: shape, fortran: fortran, data: data)
    }

    /// `_frombuffer(buffer, dtype, shape, order)`: protocol 5's in-band form.
    private static func fromBuffer(_ call: PickleObject) throws -> Array {
        guard call.args.count == 4 else { throw NumpyPickleError.malformed("_frombuffer expects (buffer, dtype, shape, order)") }
        let data = try rawBytes(call.args[0])
        let dtype = try self.dtype(call.args[1])
        let shape = try dims(call.args[2])
        guard let order = text(call.args[3]), order == "C" || order == "F" else {
            throw NumpyPickleError.malformed("_frombuffer order is not 'C' or 'F'")
        }
        return try made(dtype: dtype, shape: shape, fortran: order == "F", data: data)
    }

    private static func made(dtype: DType, shape: [Int], fortran: Bool, data: [UInt8]) throws -> Array {
        guard Shape(shape).checkedElementCount != nil else {
            throw NumpyPickleError.malformed("shape \(shape) overflows")
        }
        guard Shape(shape).checkedByteCount(elementSize: dtype.size) == data.count else {
            throw NumpyPickleError.sizeMismatch(shape: shape, dtype: dtype, bytes: data.count)
        }
        if fortran && shape.count > 1 {
            throw NumpyPickleError.unsupported("Fortran-order arrays")
        }
        return Array(dtype: dtype, shape: shape, bytes: data)
    }

    private static func dims(_ value: PickleValue) throws -> [Int] {
        guard let items = value.sequenceItems else { throw NumpyPickleError.malformed("array shape is not a tuple") }
        return try items.map {
            guard case let .int(v) = $0, v >= 0 else { throw NumpyPickleError.malformed("array shape holds \($0)") }
            return v
        }
    }

    /// `numpy.dtype(spec, align, copy)` plus its BUILD state `(version, byteorder, ...)`.
    private static func dtype(_ value: PickleValue) throws -> DType {
        guard case let .object(d) = value, d.name == "dtype", let spec = d.args.first.flatMap(text) else {
            throw NumpyPickleError.malformed("array dtype is not numpy.dtype(...)")
        }
        var order = "|"
        if let state = d.state?.sequenceItems, state.count >= 2, let o = text(state[1]) { order = o }
        guard order != ">" else { throw NumpyPickleError.unsupported("big-endian dtype '\(spec)'") }
        let table: [String: DType] = [
            "u1": .u8, "i1": .i8, "b1": .bool, "i2": .i16, "u2": .u16, "i4": .i32, "u4": .u32,
            "i8": .i64, "u8": .u64, "f2": .f16, "f4": .f32, "f8": .f64,
        ]
        guard let t = table[spec] else { throw NumpyPickleError.unsupported("dtype '\(spec.prefix(20))'") }
        return t
    }

    /// Array data: bytes (Python 3), or a latin-1 string (Python 2's BINSTRING, one char per byte).
    private static func rawBytes(_ value: PickleValue) throws -> [UInt8] {
        switch value {
        case let .bytes(b): return b
        case let .string(s):
            // Each latin-1 character is one byte: U+0000…U+007F as itself, U+0080…U+00FF as the
            // UTF-8 pair C2/C3 xx. Decoding the UTF-8 bytes directly is several times faster than
            // walking unicode scalars (a CIFAR batch is 30 MB).
            var text = s
            text.makeContiguousUTF8()
            let decoded: [UInt8]?? = text.utf8.withContiguousStorageIfAvailable { u -> [UInt8]? in
                var out: [UInt8] = []
                out.reserveCapacity(u.count)
                var i = 0
                while i < u.count {
                    let b = u[i]
                    if b < 0x80 {
                        out.append(b)
                        i += 1
                    } else if b == 0xC2 || b == 0xC3, i + 1 < u.count {
                        out.append((b & 0x03) << 6 | (u[i + 1] & 0x3F))
                        i += 2
                    } else {
                        return nil
                    }
                }
                return out
            }
            guard let bytes = decoded ?? nil else { throw NumpyPickleError.malformed("array data string is not latin-1") }
            return bytes
        default:
            throw NumpyPickleError.malformed("array data is \(value.kindName), not bytes")
        }
    }

    /// A `str` or `bytes` value as text (Python 2 and 3 spell names differently).
    public static func text(_ value: PickleValue) -> String? {
        switch value {
        case let .string(s): return s
        case let .bytes(b): return String(decoding: b, as: UTF8.self)
        default: return nil
        }
    }
}

extension PickleValue {
    /// Python 2 pickles spell dict keys as `str`, Python 3 ones (with encoding='bytes') as `bytes`:
    /// the entry under either spelling.
    public func entry(_ key: String) -> PickleValue? {
        guard case let .dict(d) = self else { return nil }
        return d.entries.first { $0.key == .string(key) || $0.key == .bytes(Swift.Array(key.utf8)) }?.value
    }

    /// A short name of the value's kind for messages.
    public var kindName: String {
        switch self {
        case .none: return "None"
        case .bool: return "a bool"
        case .int, .bigInt: return "an int"
        case .float: return "a float"
        case .string: return "a str"
        case .bytes: return "bytes"
        case .list: return "a list"
        case .tuple: return "a tuple"
        case .set: return "a set"
        case .dict: return "a dict"
        case let .global(m, n): return "\(m).\(n)"
        case .storage: return "a storage"
        case .tensor: return "a tensor"
        case let .object(o): return "\(o.module).\(o.name)(...)"
        }
    }
}

public enum NumpyPickleError: Error, CustomStringConvertible, Equatable {
    case notAnArray(String)
    case malformed(String)
    case unsupported(String)
    case sizeMismatch(shape: [Int], dtype: DType, bytes: Int)

    /// The texts carry names from the file (globals, dtype specs): escaped, so a message stays one line.
    public var description: String {
        switch self {
        case let .notAnArray(what): return "expected a pickled NumPy array, found \(what.escapedForMessage)"
        case let .malformed(why): return "malformed NumPy array pickle: \(why.escapedForMessage)"
        case let .unsupported(what): return "unsupported NumPy array: \(what.escapedForMessage)"
        case let .sizeMismatch(shape, dtype, bytes):
            // The shape is the file's: its byte count may not fit an Int (that is why it mismatched).
            let expected = Shape(shape).checkedElementCount.flatMap { Checked.product($0, dtype.size) }.map(String.init) ?? "more than \(Int.max)"
            return "NumPy array of shape \(shape) and dtype \(dtype) carries \(bytes) data bytes, expected \(expected)"
        }
    }
}
