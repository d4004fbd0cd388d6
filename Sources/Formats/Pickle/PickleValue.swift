import TensorStore

/// What a weights pickle holds, after the allow-listed globals have been interpreted. Immutable:
/// objects the pickle shares through its memo are shared here too (arrays are copy-on-write), so a
/// value built from a small pickle is small, however often it refers to itself.
public indirect enum PickleValue: Equatable, Sendable, CustomStringConvertible {
    case none
    case bool(Bool)
    case int(Int)
    /// An integer beyond 64 bits (LONG1/LONG4): little-endian two's complement bytes.
    case bigInt(bytes: [UInt8])
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case list([PickleValue])
    case tuple([PickleValue])
    case set([PickleValue])
    /// dict, `collections.OrderedDict` or `collections.Counter`, in insertion order.
    case dict(PickleDict)
    /// An allowed global that was pushed but not called (a dtype such as `torch.float16`, a class).
    case global(module: String, name: String)
    /// A storage handed out by a persistent id (`('storage', FloatStorage, key, location, numel)`).
    case storage(PickleStorageRef)
    /// A tensor made by one of torch's rebuild functions: a view description, no bytes.
    case tensor(PickleTensor)
    /// Any other allowed call kept as data: `torch.device('cpu')`, `torch.serialization._get_layout(...)`, `complex(...)`.
    case object(PickleObject)

    public var description: String {
        switch self {
        case .none: return "None"
        case let .bool(b): return b ? "True" : "False"
        case let .int(i): return String(i)
        case let .bigInt(bytes): return PickleValue.decimalString(littleEndianTwosComplement: bytes)
        case let .float(d): return PickleValue.pythonRepr(d)
        case let .string(s): return "'\(s)'"
        case let .bytes(b): return "b<\(b.count) bytes>"
        case let .list(items): return "[" + items.map(\.description).joined(separator: ", ") + "]"
        case let .tuple(items):
            return "(" + items.map(\.description).joined(separator: ", ") + (items.count == 1 ? ",)" : ")")
        case let .set(items): return "{" + items.map(\.description).joined(separator: ", ") + "}"
        case let .dict(d): return d.description
        case let .global(module, name): return "\(module).\(name)"
        case let .storage(s): return s.description
        case let .tensor(t): return t.description
        case let .object(o): return o.description
        }
    }

    /// The value as text when it is a scalar (int, float, bool, str), spelled as Python's `str()` does.
    public var scalarText: String? {
        switch self {
        case let .bool(b): return b ? "True" : "False"
        case let .int(i): return String(i)
        case let .bigInt(bytes): return PickleValue.decimalString(littleEndianTwosComplement: bytes)
        case let .float(d): return PickleValue.pythonRepr(d)
        case let .string(s): return s
        default: return nil
        }
    }

    public var stringValue: String? { if case let .string(s) = self { return s } else { return nil } }
    public var intValue: Int? { if case let .int(i) = self { return i } else { return nil } }
    public var dictValue: PickleDict? { if case let .dict(d) = self { return d } else { return nil } }
    public var tensorValue: PickleTensor? { if case let .tensor(t) = self { return t } else { return nil } }
    /// Items of a list or tuple.
    public var sequenceItems: [PickleValue]? {
        switch self {
        case let .list(items), let .tuple(items): return items
        default: return nil
        }
    }

    /// Python's `repr(float)`: shortest round-trip digits, `inf`, `nan`, and `1.0` rather than `1`.
    static func pythonRepr(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d < 0 ? "-inf" : "inf" }
        var s = d.description
        if let e = s.firstIndex(of: "e") {
            // Swift writes 1e-05 as "1e-05"; Python as "1e-05" too, but Swift's "1.0e-05" needs the ".0" dropped.
            let mantissa = s[..<e], exponent = s[s.index(after: e)...]
            var m = String(mantissa)
            if m.hasSuffix(".0") { m.removeLast(2) }
            var exp = String(exponent)
            let sign = exp.first == "-" ? "-" : "+"
            exp = exp.trimmingCharacters(in: "+-")
            if exp.count < 2 { exp = "0" + exp }
            s = m + "e" + sign + exp
        }
        return s
    }

    /// Widest integer (in bytes) spelled out in decimal; wider ones are shown by their leading hex
    /// digits and bit length. Decimal conversion is quadratic in the width, and one 100 KB LONG4
    /// in a checkpoint's metadata must not stall `inspect` (CPython refuses str() beyond 4300
    /// digits for the same reason). 64 bytes is 154 digits, beyond any counter or seed.
    static let decimalIntegerBytes = 64

    /// Text of a little-endian two's complement integer: decimal up to `decimalIntegerBytes`,
    /// else `0x1f2e…(800000-bit integer)` with the sign in front. Linear beyond the decimal width.
    static func decimalString(littleEndianTwosComplement bytes: [UInt8]) -> String {
        guard let top = bytes.last else { return "0" }
        let negative = (top & 0x80) != 0
        var magnitude = bytes
        if negative {
            // Two's complement negation: invert and add one.
            var carry = 1
            for i in magnitude.indices {
                let v = Int(~magnitude[i] & 0xFF) + carry
                magnitude[i] = UInt8(v & 0xFF)
                carry = v >> 8
            }
        }
        while magnitude.last == 0 { magnitude.removeLast() }
        guard let high = magnitude.last else { return "0" }
        let sign = negative ? "-" : ""
        if magnitude.count > decimalIntegerBytes {
            let bits = (magnitude.count - 1) * 8 + (8 - high.leadingZeroBitCount)
            let lead = magnitude.suffix(8).reversed().map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
            return sign + "0x" + lead.drop(while: { $0 == "0" }) + "…(\(bits)-bit integer)"
        }
        // Repeated division by 10^9 over big-endian limbs in base 2^32: nine digits per pass.
        var limbs: [UInt64] = []
        for lo in stride(from: 0, to: magnitude.count, by: 4) {
            var limb: UInt64 = 0
            for j in (lo..<Swift.min(lo + 4, magnitude.count)).reversed() { limb = limb << 8 | UInt64(magnitude[j]) }
            limbs.append(limb)
        }
        limbs.reverse()
        var chunks: [UInt64] = []
        while let first = limbs.firstIndex(where: { $0 != 0 }) {
            limbs.removeFirst(first)
            var remainder: UInt64 = 0
            for k in limbs.indices {
                let cur = remainder << 32 | limbs[k]
                limbs[k] = cur / 1_000_000_000
                remainder = cur % 1_000_000_000
            }
            chunks.append(remainder)
        }
        guard let leading = chunks.last else { return "0" }
        var text = sign + String(leading)
        for chunk in chunks.dropLast().reversed() {
            let digits = String(chunk)
            text += String(repeating: "0", count: 9 - digits.count) + digits
        }
        return text
    }
}

private extension String {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s.removeFirst() }
        return String(s)
    }
}

public struct PickleDictEntry: Equatable, Sendable {
    public var key: PickleValue
    public var value: PickleValue
    public init(key: PickleValue, value: PickleValue) {
        self.key = key
        self.value = value
    }
}

/// A dict in insertion order, plus the attributes a BUILD gave it (a state dict's `_metadata`).
public struct PickleDict: Equatable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable { case dict, orderedDict, counter }
    public var kind: Kind
    public var entries: [PickleDictEntry]
    public var attributes: [PickleDictEntry]

    public init(kind: Kind = .dict, entries: [PickleDictEntry] = [], attributes: [PickleDictEntry] = []) {
        self.kind = kind
        self.entries = entries
        self.attributes = attributes
    }

    public var count: Int { entries.count }
    public var keys: [PickleValue] { entries.map(\.key) }

    public subscript(key: String) -> PickleValue? {
        entries.first { $0.key == .string(key) }?.value
    }

    public subscript(key: Int) -> PickleValue? {
        entries.first { $0.key == .int(key) }?.value
    }

    public func attribute(_ name: String) -> PickleValue? {
        attributes.first { $0.key == .string(name) }?.value
    }

    public var description: String {
        let body = entries.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
        switch kind {
        case .dict: return "{" + body + "}"
        case .orderedDict: return "OrderedDict({" + body + "})"
        case .counter: return "Counter({" + body + "})"
        }
    }
}

/// A storage as a persistent id names it. `numel` counts elements of the storage's dtype, bytes for
/// `UntypedStorage`. Legacy (pre-1.6) files may describe a view on a larger storage.
public struct PickleStorageRef: Equatable, Sendable, CustomStringConvertible {
    public struct View: Equatable, Sendable {
        public var key: String
        public var offset: Int
        public var numel: Int
        public init(key: String, offset: Int, numel: Int) {
            self.key = key
            self.offset = offset
            self.numel = numel
        }
    }

    public init(key: String, storageClass: String, torchDType: String, location: String, numel: Int, view: View? = nil) {
        self.key = key
        self.storageClass = storageClass
        self.torchDType = torchDType
        self.location = location
        self.numel = numel
        self.view = view
    }

    public var key: String
    /// `FloatStorage`, `HalfStorage`, ..., `UntypedStorage`.
    public var storageClass: String
    /// torch dtype name of the storage (`float32`); `uint8` for `UntypedStorage`.
    public var torchDType: String
    public var location: String
    public var numel: Int
    public var view: View?

    public var isUntyped: Bool { storageClass == "UntypedStorage" }

    public var description: String {
        "storage(\(storageClass) key='\(key)' \(location) numel=\(numel))"
    }
}

/// A tensor as torch's rebuild functions describe it: dtype, storage offset, sizes and strides in
/// elements over a storage. The bytes live in the checkpoint (see `TorchCheckpoint.read`).
public struct PickleTensor: Equatable, Sendable, CustomStringConvertible {
    public var storage: PickleStorageRef
    /// torch dtype name (`float32`, `bfloat16`, `uint16`, `float8_e4m3fn`, ...).
    public var torchDType: String
    public var storageOffset: Int
    public var shape: [Int]
    public var strides: [Int]
    public var requiresGrad: Bool
    public var isParameter: Bool

    public init(storage: PickleStorageRef, torchDType: String, storageOffset: Int, shape: [Int], strides: [Int],
                requiresGrad: Bool = false, isParameter: Bool = false) {
        self.storage = storage
        self.torchDType = torchDType
        self.storageOffset = storageOffset
        self.shape = shape
        self.strides = strides
        self.requiresGrad = requiresGrad
        self.isParameter = isParameter
    }

    /// The DinoKit dtype, nil for torch dtypes DinoKit does not store (complex, quantized, bits).
    public var dtype: DType? { TorchDTypeNames.dtype(torchName: torchDType) }

    public var description: String {
        "tensor(\(torchDType) \(shape) stride \(strides) offset \(storageOffset) on \(storage))"
    }
}

/// An allowed callable applied to arguments, kept as data because it carries no tensor bytes.
public struct PickleObject: Equatable, Sendable, CustomStringConvertible {
    public var module: String
    public var name: String
    public var args: [PickleValue]
    public var state: PickleValue?

    public init(module: String, name: String, args: [PickleValue], state: PickleValue? = nil) {
        self.module = module
        self.name = name
        self.args = args
        self.state = state
    }

    public var description: String {
        "\(module).\(name)(" + args.map(\.description).joined(separator: ", ") + ")"
    }
}
