import TensorStore

/// A pickle reader that executes nothing. It walks the opcodes of protocols 0-5 that weights files
/// use, refuses every global not on `PickleAllowList` by name, and interprets torch's rebuild
/// functions and persistent ids as data (`PickleValue.tensor`, `.storage`).
///
/// While reading, objects live in an arena and refer to each other by index: a memo GET pushes an
/// index (never a copy), containers filled after they were memoized stay shared as in Python, and
/// no object graph is ever torn down recursively. At STOP the graph is frozen into a `PickleValue`,
/// which is where nesting depth, cycles and the expanded size are checked.
public struct Unpickler {
    public let limits: PickleLimits
    /// Position of the next opcode; after `load()`, just past STOP.
    public private(set) var position: Int
    /// The protocol named by the last PROTO opcode (0 when none was seen).
    public private(set) var protocolVersion = 0
    /// Globals allowed beyond `PickleAllowList` for one reader's own format ("module.name"), kept
    /// as inert data when called (`PickleValue.object`); empty for weights. See NumpyPickle.swift.
    public var extraGlobals: Set<String> = []

    let input: UnsafeRawBufferPointer
    var nodes: [Node] = []
    var nodeOffsets: [Int] = []
    var stack: [Int] = []
    var marks: [Int] = []
    /// The memo: index -> node. Pickles memoize 0, 1, 2, ... in order, so indices live in an array;
    /// an index far beyond it (legal, rare) goes to `sparseMemo` rather than growing the array.
    var memo: [Int] = []
    var sparseMemo: [Int: Int] = [:]
    var memoCount = 0
    /// Work spent so far against `limits.maxWork` (see `spend`).
    var work = 0
    /// Dict keys by value, each tuple's key made once (`hashKey`): node index -> its key, and every
    /// distinct key -> a small id that tuples hold for their items.
    var keyOfNode: [Int: HashKey] = [:]
    var keyIDs: [HashKey: Int] = [:]
    /// Offset of the opcode being executed, for errors.
    var opOffset = 0

    /// Reads one pickle starting at `start` in `input` (a file may hold several in a row, as legacy
    /// checkpoints do). `input` must stay valid while the unpickler is used.
    public init(_ input: UnsafeRawBufferPointer, startingAt start: Int = 0, limits: PickleLimits? = nil) {
        self.input = input
        self.position = Swift.min(Swift.max(start, 0), input.count)
        self.limits = limits ?? PickleLimits(inputSize: input.count - self.position)
    }

    /// Unpickles a whole buffer.
    public static func unpickle(_ bytes: [UInt8], limits: PickleLimits? = nil) throws -> PickleValue {
        try bytes.withUnsafeBytes { buffer in
            var u = Unpickler(buffer, limits: limits)
            return try u.load()
        }
    }

    /// Reads opcodes up to STOP and returns the object on top of the stack.
    public mutating func load() throws -> PickleValue {
        nodes.removeAll(keepingCapacity: true)
        nodeOffsets.removeAll(keepingCapacity: true)
        stack.removeAll()
        marks.removeAll()
        memo.removeAll()
        sparseMemo.removeAll()
        memoCount = 0
        keyOfNode.removeAll()
        keyIDs.removeAll()
        work = 0
        while true {
            opOffset = position
            let byte = try readByte()
            guard let op = PickleOpcode(rawValue: byte) else {
                throw PickleError.unknownOpcode(byte, offset: opOffset)
            }
            if op == .stop {
                let root = try pop()
                var freezer = Freezer(unpickler: self)
                return try freezer.freeze(root)
            }
            try execute(op)
        }
    }

    // MARK: - Opcodes

    private mutating func execute(_ op: PickleOpcode) throws {
        switch op {
        case .proto:
            let v = try readByte()
            guard v <= 5 else { throw PickleError.malformed("unsupported pickle protocol \(v)", offset: opOffset) }
            protocolVersion = Int(v)
        case .frame:
            // Frames only group opcodes for buffering; the bytes follow inline. Check the claim.
            let length = try readUInt64()
            guard length <= UInt64(input.count - position) else {
                throw PickleError.truncated(offset: opOffset, needed: Int(clamping: length) - (input.count - position))
            }
        case .stop:
            break // handled in load()

        // Stack and memo
        case .mark:
            guard marks.count < limits.maxMarkDepth else {
                throw PickleError.limitExceeded(what: "MARKs open at once", limit: limits.maxMarkDepth, offset: opOffset)
            }
            marks.append(stack.count)
        case .pop:
            if stack.count > fence { stack.removeLast() } else { _ = try popMark() }
        case .popMark:
            _ = try popMark()
        case .dup:
            stack.append(try top())
        case .put:
            try memoize(at: try readDecimalLine())
        case .binPut:
            try memoize(at: Int(try readByte()))
        case .longBinPut:
            try memoize(at: Int(try readUInt32()))
        case .memoize:
            try memoize(at: memoCount)
        case .get:
            try pushMemo(try readDecimalLine())
        case .binGet:
            try pushMemo(Int(try readByte()))
        case .longBinGet:
            try pushMemo(Int(try readUInt32()))

        // Scalars
        case .none: push(.none)
        case .newTrue: push(.bool(true))
        case .newFalse: push(.bool(false))
        case .binInt: push(.int(Int(Int32(bitPattern: try readUInt32()))))
        case .binInt1: push(.int(Int(try readByte())))
        case .binInt2: push(.int(Int(try readUInt16())))
        case .int:
            let text = try readLine()
            switch text {
            case "00": push(.bool(false))
            case "01": push(.bool(true))
            default:
                guard let v = Int(text) else { throw PickleError.malformed("INT '\(String(text.prefix(40)).escapedForMessage)' is not a 64-bit integer", offset: opOffset) }
                push(.int(v))
            }
        case .long:
            var text = try readLine()
            if text.hasSuffix("L") { text.removeLast() }
            guard let v = Int(text) else { throw PickleError.malformed("LONG '\(String(text.prefix(40)).escapedForMessage)' is not a 64-bit integer", offset: opOffset) }
            push(.int(v))
        case .long1:
            let n = Int(try readByte())
            push(Unpickler.decodeLong(try read(n)))
        case .long4:
            let n = Int(Int32(bitPattern: try readUInt32()))
            guard n >= 0 else { throw PickleError.malformed("LONG4 with negative length \(n)", offset: opOffset) }
            push(Unpickler.decodeLong(try read(n)))
        case .binFloat:
            let raw = try read(8)
            var bits: UInt64 = 0
            for b in raw { bits = bits << 8 | UInt64(b) } // big-endian
            push(.float(Double(bitPattern: bits)))
        case .float:
            let text = try readLine()
            guard let v = Double(text) else { throw PickleError.malformed("FLOAT '\(String(text.prefix(40)).escapedForMessage)' is not a number", offset: opOffset) }
            push(.float(v))

        // Strings and bytes
        case .binUnicode: push(.string(Unpickler.utf8(try read(try readLength32()))))
        case .shortBinUnicode: push(.string(Unpickler.utf8(try read(Int(try readByte())))))
        case .binUnicode8: push(.string(Unpickler.utf8(try read(try readLength64()))))
        case .shortBinString: push(.string(Unpickler.latin1(try read(Int(try readByte())))))
        case .binString:
            let n = Int(Int32(bitPattern: try readUInt32()))
            guard n >= 0 else { throw PickleError.malformed("BINSTRING with negative length \(n)", offset: opOffset) }
            push(.string(Unpickler.latin1(try read(n))))
        case .binBytes: push(.bytes(Array(try read(try readLength32()))))
        case .shortBinBytes: push(.bytes(Array(try read(Int(try readByte())))))
        case .binBytes8, .byteArray8: push(.bytes(Array(try read(try readLength64()))))

        // Containers
        case .emptyList: push(.list(ListBox([])))
        case .emptyDict: push(.dict(DictBox(kind: .dict)))
        case .emptyTuple: push(.tuple([]))
        case .emptySet: push(.set(ListBox([])))
        case .list: push(.list(ListBox(try popMark())))
        case .tuple: push(.tuple(try popMark()))
        case .frozenSet: push(.set(ListBox(try popMark())))
        case .tuple1:
            let a = try pop()
            push(.tuple([a]))
        case .tuple2:
            let b = try pop(), a = try pop()
            push(.tuple([a, b]))
        case .tuple3:
            let c = try pop(), b = try pop(), a = try pop()
            push(.tuple([a, b, c]))
        case .dict:
            let items = try popMark()
            let d = DictBox(kind: .dict)
            try setItems(items, into: d)
            push(.dict(d))
        case .append:
            let item = try pop()
            try listTarget().items.append(item)
        case .appends:
            let items = try popMark()
            try listTarget().items.append(contentsOf: items)
        case .setItem:
            let v = try pop(), k = try pop()
            try setItems([k, v], into: try dictTarget())
        case .setItems:
            let items = try popMark()
            try setItems(items, into: try dictTarget())
        case .addItems:
            let items = try popMark()
            guard case let .set(box) = nodes[try top()] else {
                throw PickleError.malformed("ADDITEMS on something that is not a set", offset: opOffset)
            }
            box.items.append(contentsOf: items)

        // Globals and calls: everything here goes through the allow-list.
        case .global:
            let module = try readLine(), name = try readLine()
            push(try allowedGlobal(module: module, name: name))
        case .stackGlobal:
            let nameIndex = try pop(), moduleIndex = try pop()
            guard case let .string(name) = nodes[nameIndex], case let .string(module) = nodes[moduleIndex] else {
                throw PickleError.malformed("STACK_GLOBAL needs two strings", offset: opOffset)
            }
            push(try allowedGlobal(module: module, name: name))
        case .inst:
            let module = try readLine(), name = try readLine()
            guard case let .global(m, n) = try allowedGlobal(module: module, name: name) else { return }
            let args = try popMark()
            push(try call(module: m, name: n, args: args, depth: 0))
        case .obj:
            let items = try popMark()
            guard let cls = items.first, case let .global(m, n) = nodes[cls] else {
                throw PickleError.malformed("OBJ needs a class after MARK", offset: opOffset)
            }
            push(try call(module: m, name: n, args: Array(items.dropFirst()), depth: 0))
        case .reduce:
            let argsIndex = try pop(), callableIndex = try pop()
            push(try apply(callableIndex, argsIndex))
        case .newObj:
            let argsIndex = try pop(), clsIndex = try pop()
            push(try newObject(clsIndex, argsIndex))
        case .newObjEx:
            let kwargsIndex = try pop(), argsIndex = try pop(), clsIndex = try pop()
            if case let .dict(kw) = nodes[kwargsIndex], !kw.keys.isEmpty {
                throw PickleError.malformed("NEWOBJ_EX with keyword arguments", offset: opOffset)
            }
            push(try newObject(clsIndex, argsIndex))
        case .build:
            let state = try pop()
            try build(try top(), state: state)
        case .binPersID:
            let pid = try pop()
            push(try persistentLoad(pid))

        case .persID, .string, .unicode, .ext1, .ext2, .ext4, .nextBuffer, .readonlyBuffer:
            throw PickleError.unsupportedOpcode(name: op.name, offset: opOffset)
        }
    }

    // MARK: - Stack

    /// Items below the innermost MARK belong to an enclosing frame.
    var fence: Int { marks.last ?? 0 }

    mutating func push(_ node: Node) {
        nodes.append(node)
        nodeOffsets.append(opOffset)
        stack.append(nodes.count - 1)
    }

    mutating func pop() throws -> Int {
        guard stack.count > fence else { throw PickleError.malformed("stack underflow", offset: opOffset) }
        return stack.removeLast()
    }

    func top() throws -> Int {
        guard stack.count > fence, let t = stack.last else { throw PickleError.malformed("stack underflow", offset: opOffset) }
        return t
    }

    mutating func popMark() throws -> [Int] {
        guard let m = marks.popLast() else { throw PickleError.malformed("no MARK to pop to", offset: opOffset) }
        let items = Array(stack[m...])
        stack.removeSubrange(m...)
        return items
    }

    /// Gaps the dense memo may pad with empty slots before an index goes to `sparseMemo`.
    static let memoGap = 1024

    private mutating func memoize(at index: Int) throws {
        guard index >= 0 else { throw PickleError.malformed("negative memo index", offset: opOffset) }
        let node = try top()
        if index < memo.count {
            if memo[index] < 0 { memoCount += 1 }
            memo[index] = node
            return
        }
        guard sparseMemo[index] == nil else {
            sparseMemo[index] = node
            return
        }
        memoCount += 1
        // Once an index went sparse the array stops growing, so no index is ever in both.
        let dense = index - memo.count < Unpickler.memoGap && sparseMemo.isEmpty
        // Empty slots cost memory like entries do: count them, or a pickle of 5-byte PUTs each
        // 1023 past the last pads the memo with 8 KB per 5 bytes.
        let slots = dense ? index + 1 + sparseMemo.count : memo.count + sparseMemo.count + 1
        guard slots <= limits.maxMemoEntries else {
            throw PickleError.limitExceeded(what: "memo entries (including the gaps between indices)",
                                            limit: limits.maxMemoEntries, offset: opOffset)
        }
        if dense {
            memo.append(contentsOf: repeatElement(-1, count: index - memo.count))
            memo.append(node)
        } else {
            sparseMemo[index] = node
        }
    }

    private mutating func pushMemo(_ index: Int) throws {
        let node = index >= 0 && index < memo.count ? memo[index] : (sparseMemo[index] ?? -1)
        guard node >= 0 else { throw PickleError.malformed("memo entry \(index) was never stored", offset: opOffset) }
        stack.append(node)
    }

    private func listTarget() throws -> ListBox {
        guard case let .list(box) = nodes[try top()] else {
            throw PickleError.malformed("APPEND to something that is not a list", offset: opOffset)
        }
        return box
    }

    private func dictTarget() throws -> DictBox {
        guard case let .dict(box) = nodes[try top()] else {
            throw PickleError.malformed("SETITEM on something that is not a dict", offset: opOffset)
        }
        return box
    }

    private mutating func setItems(_ items: [Int], into dict: DictBox) throws {
        guard items.count % 2 == 0 else { throw PickleError.malformed("SETITEMS with an odd number of items", offset: opOffset) }
        var i = 0
        while i < items.count {
            let key = try hashKey(items[i], depth: 0)
            dict.set(key: key, keyNode: items[i], value: items[i + 1])
            i += 2
        }
    }

    /// Counts `units` of work against `limits.maxWork`.
    mutating func spend(_ units: Int) throws {
        work += units
        guard work <= limits.maxWork else {
            throw PickleError.limitExceeded(
                what: "work to build keys and values (shared objects repeated too often: a hash or copy bomb?)",
                limit: limits.maxWork, offset: opOffset)
        }
    }

    /// Python equality for dict keys: 1, 1.0 and True are one key; objects compare by identity.
    /// A dict key by value (Python's hash and ==). Tuples are immutable, so each tuple node's key
    /// is made once and reused, and a tuple's key holds its items' interned ids rather than their
    /// keys: a key built from tuples shared 2^n times over (a hash bomb) costs one step per node
    /// of the pickle, and hashing or comparing it afterwards one step per item.
    mutating func hashKey(_ index: Int, depth: Int) throws -> HashKey {
        guard depth < limits.maxNestingDepth else {
            throw PickleError.limitExceeded(what: "nesting depth of a dict key", limit: limits.maxNestingDepth, offset: opOffset)
        }
        try spend(1)
        if let known = keyOfNode[index] { return known }
        switch nodes[index] {
        case .none: return .none
        case let .bool(b): return .int(b ? 1 : 0)
        case let .int(i): return .int(i)
        case let .bigInt(b):
            try spend(b.count / 8)
            return .big(b)
        case let .float(d):
            if d == d.rounded(), abs(d) < 9.2e18 { return .int(Int(d)) }
            return .float(d.bitPattern)
        case let .string(s):
            try spend(s.utf8.count / 8) // hashed and compared byte by byte
            return .string(s)
        case let .bytes(b):
            try spend(b.count / 8)
            return .bytes(b)
        case let .tuple(items):
            var ids: [Int] = []
            ids.reserveCapacity(items.count)
            for item in items {
                let key = try hashKey(item, depth: depth + 1)
                if let id = keyIDs[key] {
                    ids.append(id)
                } else {
                    ids.append(keyIDs.count)
                    keyIDs[key] = keyIDs.count
                }
            }
            let key = HashKey.tuple(ids)
            keyOfNode[index] = key
            return key
        case .list, .dict, .set:
            throw PickleError.malformed("unhashable dict key (list, dict or set)", offset: opOffset)
        case .global, .storage, .tensor, .object:
            return .identity(index)
        }
    }

    private func allowedGlobal(module rawModule: String, name rawName: String) throws -> Node {
        let (module, name) = PickleAllowList.canonical(module: rawModule, name: rawName)
        guard PickleAllowList.isAllowed(module: module, name: name)
            || (extraGlobals.contains("\(module).\(name)") && !PickleAllowList.blockedModules.contains(module)) else {
            throw PickleError.forbiddenGlobal(module: module, name: name, offset: opOffset)
        }
        return .global(module: module, name: name)
    }

    private mutating func build(_ target: Int, state: Int) throws {
        switch nodes[target] {
        case let .dict(box):
            // OrderedDict.__dict__.update(state): a state dict's `_metadata`.
            guard case let .dict(stateBox) = nodes[state] else {
                throw PickleError.malformed("BUILD of a dict needs a dict state", offset: opOffset)
            }
            try spend(stateBox.keys.count)
            box.attributes.append(contentsOf: zip(stateBox.keys, stateBox.values).map { ($0, $1) })
        case let .object(box):
            box.state = state
        case .tensor:
            // Tensor attributes (`_rebuild_from_type_v2` state, subclass slots) carry no weights.
            break
        default:
            throw PickleError.malformed("BUILD is only allowed on dicts, tensors and allowed objects", offset: opOffset)
        }
    }

    // MARK: - Reading

    mutating func readByte() throws -> UInt8 {
        guard position < input.count else { throw PickleError.truncated(offset: position, needed: 1) }
        defer { position += 1 }
        return input[position]
    }

    /// `n` bytes, checked against what is left before anything is allocated.
    mutating func read(_ n: Int) throws -> UnsafeRawBufferPointer {
        let left = input.count - position
        guard n >= 0, n <= left else { throw PickleError.truncated(offset: position, needed: n - left) }
        defer { position += n }
        return UnsafeRawBufferPointer(rebasing: input[position..<(position + n)])
    }

    mutating func readUInt16() throws -> UInt16 {
        let b = try read(2)
        return UInt16(b[0]) | UInt16(b[1]) << 8
    }

    mutating func readUInt32() throws -> UInt32 {
        let b = try read(4)
        return UInt32(b[0]) | UInt32(b[1]) << 8 | UInt32(b[2]) << 16 | UInt32(b[3]) << 24
    }

    mutating func readUInt64() throws -> UInt64 {
        let b = try read(8)
        var v: UInt64 = 0
        for i in (0..<8).reversed() { v = v << 8 | UInt64(b[i]) }
        return v
    }

    private mutating func readLength32() throws -> Int { Int(try readUInt32()) }

    private mutating func readLength64() throws -> Int {
        let n = try readUInt64()
        guard n <= UInt64(input.count - position) else {
            throw PickleError.truncated(offset: position, needed: Int(clamping: n) - (input.count - position))
        }
        return Int(n)
    }

    /// A newline-terminated line (text opcodes and GLOBAL operands), without the newline.
    mutating func readLine() throws -> String {
        let start = position
        var i = start
        while i < input.count, input[i] != 0x0A { i += 1 }
        guard i < input.count else { throw PickleError.truncated(offset: input.count, needed: 1) }
        position = i + 1
        return Unpickler.utf8(UnsafeRawBufferPointer(rebasing: input[start..<i]))
    }

    private mutating func readDecimalLine() throws -> Int {
        let text = try readLine()
        guard let v = Int(text) else { throw PickleError.malformed("memo index '\(String(text.prefix(40)).escapedForMessage)' is not a number", offset: opOffset) }
        return v
    }

    static func utf8(_ bytes: UnsafeRawBufferPointer) -> String {
        // torch reads with errors="surrogatepass": never fail, repair what is not UTF-8.
        String(decoding: bytes, as: UTF8.self)
    }

    static func latin1(_ bytes: UnsafeRawBufferPointer) -> String {
        String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
    }

    /// LONG1/LONG4 operand: little-endian two's complement.
    static func decodeLong(_ raw: UnsafeRawBufferPointer) -> Node {
        let bytes = Array(raw)
        guard !bytes.isEmpty else { return .int(0) }
        let negative = bytes.last! & 0x80 != 0
        let fill: UInt8 = negative ? 0xFF : 0
        if bytes.count <= 8 || (bytes[8...].allSatisfy { $0 == fill } && (bytes[7] & 0x80 != 0) == negative) {
            var v: UInt64 = negative ? ~0 : 0
            for i in (0..<Swift.min(8, bytes.count)).reversed() {
                v = v << 8 | UInt64(bytes[i])
            }
            if bytes.count < 8 {
                // Sign-extend from the top of the given width.
                let shift = UInt64(64 - 8 * bytes.count)
                v = UInt64(bitPattern: Int64(bitPattern: v << shift) >> Int64(shift))
            }
            return .int(Int(Int64(bitPattern: v)))
        }
        return .bigInt(bytes)
    }
}

// MARK: - Arena

extension Unpickler {
    /// An object while the pickle is being read. Mutable containers are boxes so that every memo
    /// reference sees later appends; boxes hold indices only, so nothing nests in memory.
    enum Node {
        case none
        case bool(Bool)
        case int(Int)
        case bigInt([UInt8])
        case float(Double)
        case string(String)
        case bytes([UInt8])
        case list(ListBox)
        case set(ListBox)
        case tuple([Int])
        case dict(DictBox)
        // Boxed (rare, and wide): inline they made every node ~160 bytes, and pushing nodes was a
        // fifth of unpickling.
        indirect case global(module: String, name: String)
        indirect case storage(PickleStorageRef)
        indirect case tensor(PickleTensor)
        case object(ObjectBox)
    }

    final class ListBox {
        var items: [Int]
        init(_ items: [Int]) { self.items = items }
    }

    final class DictBox {
        var kind: PickleDict.Kind
        var keys: [Int] = []
        var values: [Int] = []
        var index: [HashKey: Int] = [:]
        var attributes: [(Int, Int)] = []
        init(kind: PickleDict.Kind) { self.kind = kind }

        func set(key: HashKey, keyNode: Int, value: Int) {
            if let at = index[key] {
                values[at] = value // Python keeps the first key object and the last value
            } else {
                index[key] = keys.count
                keys.append(keyNode)
                values.append(value)
            }
        }
    }

    final class ObjectBox {
        let module: String
        let name: String
        let args: [Int]
        var state: Int?
        init(module: String, name: String, args: [Int]) {
            self.module = module
            self.name = name
            self.args = args
        }
    }

    enum HashKey: Hashable {
        case none
        case int(Int)
        case big([UInt8])
        case float(UInt64)
        case string(String)
        case bytes([UInt8])
        /// The interned ids of the items' keys (`Unpickler.keyIDs`).
        case tuple([Int])
        case identity(Int)
    }
}
