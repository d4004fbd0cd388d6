import TensorStore

/// Turns the unpickler's arena into an immutable `PickleValue`. Each arena object is frozen once
/// and shared by every reference to it, so the work is linear in the pickle. This is where the
/// value's shape is bounded: nesting depth (a deep value would crash whoever recurses over it),
/// cycles (a list that contains itself), and the expanded size (a memo bomb: a few bytes that
/// reference a list which references itself twice, 60 levels down, is 2^60 nodes to a reader).
struct Freezer {
    let nodes: [Unpickler.Node]
    let offsets: [Int]
    let limits: PickleLimits
    /// By node index (arrays: a node is looked up once per reference).
    private var frozen: [(value: PickleValue, size: Int)?]
    private var inProgress: [Bool]

    init(unpickler: Unpickler) {
        nodes = unpickler.nodes
        offsets = unpickler.nodeOffsets
        limits = unpickler.limits
        frozen = Array(repeating: nil, count: nodes.count)
        inProgress = Array(repeating: false, count: nodes.count)
    }

    mutating func freeze(_ root: Int) throws -> PickleValue {
        try freeze(root, depth: 0).value
    }

    private mutating func freeze(_ index: Int, depth: Int) throws -> (value: PickleValue, size: Int) {
        if let done = frozen[index] { return done }
        let offset = offsets[index]
        guard depth <= limits.maxNestingDepth else {
            throw PickleError.limitExceeded(what: "nesting depth of containers", limit: limits.maxNestingDepth, offset: offset)
        }
        guard !inProgress[index] else {
            throw PickleError.malformed("an object contains itself (cyclic reference)", offset: offset)
        }
        inProgress[index] = true
        defer { inProgress[index] = false }

        var size = 1
        func children(_ items: [Int]) throws -> [PickleValue] {
            var out: [PickleValue] = []
            out.reserveCapacity(items.count)
            for item in items {
                let (v, s) = try freeze(item, depth: depth + 1)
                size = Checked.sum(size, s) ?? Int.max
                guard size <= limits.maxExpandedNodes else {
                    throw PickleError.limitExceeded(
                        what: "objects reachable as a tree (shared references expand too far: memo bomb?)",
                        limit: limits.maxExpandedNodes, offset: offset)
                }
                out.append(v)
            }
            return out
        }

        let value: PickleValue
        switch nodes[index] {
        case .none: value = .none
        case let .bool(b): value = .bool(b)
        case let .int(i): value = .int(i)
        case let .bigInt(b): value = .bigInt(bytes: b)
        case let .float(d): value = .float(d)
        case let .string(s): value = .string(s)
        case let .bytes(b): value = .bytes(b)
        case let .global(m, n): value = .global(module: m, name: n)
        case let .storage(s): value = .storage(s)
        case let .tensor(t): value = .tensor(t)
        case let .list(box): value = .list(try children(box.items))
        case let .set(box): value = .set(try children(box.items))
        case let .tuple(items): value = .tuple(try children(items))
        case let .dict(box):
            let keys = try children(box.keys), values = try children(box.values)
            let attrKeys = try children(box.attributes.map(\.0)), attrValues = try children(box.attributes.map(\.1))
            value = .dict(PickleDict(kind: box.kind,
                                     entries: zip(keys, values).map { PickleDictEntry(key: $0, value: $1) },
                                     attributes: zip(attrKeys, attrValues).map { PickleDictEntry(key: $0, value: $1) }))
        case let .object(box):
            let args = try children(box.args)
            let state = try box.state.map { try children([$0])[0] }
            value = .object(PickleObject(module: box.module, name: box.name, args: args, state: state))
        }
        frozen[index] = (value, size)
        return (value, size)
    }
}
