/// Writes `PickleValue`s as protocol-2 pickles, the protocol `torch.save` uses by default, with only
/// the opcodes and globals `torch.load(weights_only=True)` accepts. Tensors become
/// `_rebuild_tensor_v2` (or `_rebuild_tensor_v3` for dtypes without a storage class) over
/// persistent-id storages; bytes become `_codecs.encode(str, 'latin1')` as CPython writes them.
public struct Pickler {
    public private(set) var bytes: [UInt8] = []
    /// Globals and strings already written, by memo index: repeated ones cost a BINGET.
    private var memo: [String: Int] = [:]

    public init() {
        bytes = [PickleOpcode.proto.rawValue, 2]
    }

    /// Pickles `value` and returns the complete pickle (ending in STOP).
    public static func pickle(_ value: PickleValue) throws -> [UInt8] {
        var p = Pickler()
        try p.append(value)
        p.stop()
        return p.bytes
    }

    public mutating func stop() { op(.stop) }

    /// Appends the opcodes that push `value`.
    public mutating func append(_ value: PickleValue) throws {
        switch value {
        case .none: op(.none)
        case let .bool(b): op(b ? .newTrue : .newFalse)
        case let .int(i): int(i)
        case let .bigInt(b): long(b)
        case let .float(d):
            op(.binFloat)
            let bits = d.bitPattern
            for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift))) }
        case let .string(s): string(s)
        case let .bytes(b):
            global("_codecs", "encode")
            string(String(String.UnicodeScalarView(b.map { Unicode.Scalar($0) })), memoize: false)
            string("latin1")
            op(.tuple2)
            op(.reduce)
        case let .list(items):
            op(.emptyList)
            try batched(items.map { [$0] }, closing: .appends)
        case let .tuple(items):
            try tuple(items.map { v in { (p: inout Pickler) in try p.append(v) } })
        case let .set(items):
            global("builtins", "set")
            op(.emptyList)
            try batched(items.map { [$0] }, closing: .appends)
            op(.tuple1)
            op(.reduce)
        case let .dict(d):
            try dict(d)
        case let .global(module, name):
            global(module, name)
        case let .storage(s):
            try storage(s)
        case let .tensor(t):
            try tensor(t)
        case let .object(o):
            global(o.module, o.name)
            try tuple(o.args.map { v in { (p: inout Pickler) in try p.append(v) } })
            op(.reduce)
            if let state = o.state {
                try append(state)
                op(.build)
            }
        }
    }

    // MARK: - Pieces

    private mutating func op(_ code: PickleOpcode) { bytes.append(code.rawValue) }

    private mutating func uint32(_ v: UInt32) {
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt32(shift))) }
    }

    public mutating func int(_ v: Int) {
        switch v {
        case 0...0xFF:
            op(.binInt1)
            bytes.append(UInt8(v))
        case 0x100...0xFFFF:
            op(.binInt2)
            bytes.append(UInt8(v & 0xFF))
            bytes.append(UInt8(v >> 8))
        case Int(Int32.min)...Int(Int32.max):
            op(.binInt)
            uint32(UInt32(bitPattern: Int32(v)))
        default:
            // Shortest little-endian two's complement, as pickle's encode_long.
            var raw: [UInt8] = []
            var x = v
            repeat {
                raw.append(UInt8(truncatingIfNeeded: x))
                x >>= 8
            } while !((x == 0 && raw.last! & 0x80 == 0) || (x == -1 && raw.last! & 0x80 != 0))
            long(raw)
        }
    }

    private mutating func long(_ raw: [UInt8]) {
        if raw.count < 256 {
            op(.long1)
            bytes.append(UInt8(raw.count))
        } else {
            op(.long4)
            uint32(UInt32(raw.count))
        }
        bytes.append(contentsOf: raw)
    }

    public mutating func string(_ s: String, memoize: Bool = true) {
        if memoize, get("s:" + s) { return }
        op(.binUnicode)
        let utf8 = Array(s.utf8)
        uint32(UInt32(utf8.count))
        bytes.append(contentsOf: utf8)
        if memoize { put("s:" + s) }
    }

    public mutating func global(_ module: String, _ name: String) {
        let key = "g:\(module)\n\(name)"
        if get(key) { return }
        op(.global)
        bytes.append(contentsOf: Array(module.utf8) + [0x0A] + Array(name.utf8) + [0x0A])
        put(key)
    }

    private mutating func get(_ key: String) -> Bool {
        guard let index = memo[key] else { return false }
        if index < 256 {
            op(.binGet)
            bytes.append(UInt8(index))
        } else {
            op(.longBinGet)
            uint32(UInt32(index))
        }
        return true
    }

    private mutating func put(_ key: String) {
        let index = memo.count
        memo[key] = index
        if index < 256 {
            op(.binPut)
            bytes.append(UInt8(index))
        } else {
            op(.longBinPut)
            uint32(UInt32(index))
        }
    }

    /// A tuple of items each written by a closure: EMPTY_TUPLE, TUPLE1-3, or MARK ... TUPLE.
    private mutating func tuple(_ items: [(inout Pickler) throws -> Void]) throws {
        if items.isEmpty { op(.emptyTuple); return }
        if items.count > 3 { op(.mark) }
        for write in items { try write(&self) }
        switch items.count {
        case 1: op(.tuple1)
        case 2: op(.tuple2)
        case 3: op(.tuple3)
        default: op(.tuple)
        }
    }

    /// Groups of values closed by APPENDS / SETITEMS, 1000 per batch as CPython writes them.
    private mutating func batched(_ groups: [[PickleValue]], closing: PickleOpcode) throws {
        var i = 0
        while i < groups.count {
            let end = Swift.min(i + 1000, groups.count)
            op(.mark)
            for group in groups[i..<end] { for v in group { try append(v) } }
            op(closing)
            i = end
        }
    }

    private mutating func dict(_ d: PickleDict) throws {
        switch d.kind {
        case .dict:
            op(.emptyDict)
        case .orderedDict, .counter:
            global("collections", d.kind == .counter ? "Counter" : "OrderedDict")
            op(.emptyTuple)
            op(.reduce)
        }
        try batched(d.entries.map { [$0.key, $0.value] }, closing: .setItems)
        if !d.attributes.isEmpty {
            op(.emptyDict)
            try batched(d.attributes.map { [$0.key, $0.value] }, closing: .setItems)
            op(.build)
        }
    }

    private mutating func storage(_ s: PickleStorageRef) throws {
        guard s.view == nil else {
            throw PickleError.unsupportedCall(callable: "storage view", offset: bytes.count, detail: "legacy storage views are not written")
        }
        op(.mark)
        string("storage")
        global(s.storageClass == "UntypedStorage" ? "torch.storage" : "torch", s.storageClass)
        string(s.key, memoize: false)
        string(s.location)
        int(s.numel)
        op(.tuple)
        op(.binPersID)
    }

    private mutating func tensor(_ t: PickleTensor) throws {
        if t.isParameter {
            global("torch._utils", "_rebuild_parameter")
        }
        let v3 = t.storage.isUntyped
        global("torch._utils", v3 ? "_rebuild_tensor_v3" : "_rebuild_tensor_v2")
        op(.mark)
        try storage(t.storage)
        int(t.storageOffset)
        try tuple(t.shape.map { d in { (p: inout Pickler) in p.int(d) } })
        try tuple(t.strides.map { s in { (p: inout Pickler) in p.int(s) } })
        op(t.isParameter ? .newFalse : (t.requiresGrad ? .newTrue : .newFalse))
        emptyOrderedDict()
        if v3 { global("torch", t.torchDType) }
        op(.tuple)
        op(.reduce)
        if t.isParameter {
            op(t.requiresGrad ? .newTrue : .newFalse)
            emptyOrderedDict()
            op(.tuple3)
            op(.reduce)
        }
    }

    private mutating func emptyOrderedDict() {
        global("collections", "OrderedDict")
        op(.emptyTuple)
        op(.reduce)
    }
}
