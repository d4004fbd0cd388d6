import TensorStore

/// What the allow-listed callables mean, implemented as data transformations. This is the only place
/// where a pickle "calls" anything, and every call here builds a value; none runs code.
extension Unpickler {
    /// REDUCE: `callable(*args)`. The callable must be an allowed global pushed earlier.
    mutating func apply(_ callableIndex: Int, _ argsIndex: Int) throws -> Node {
        guard case let .global(module, name) = nodes[callableIndex] else {
            throw PickleError.malformed("REDUCE on something that is not an allowed global", offset: opOffset)
        }
        guard case let .tuple(args) = nodes[argsIndex] else {
            throw PickleError.malformed("REDUCE arguments for \(module).\(name) are not a tuple", offset: opOffset)
        }
        return try call(module: module, name: name, args: args, depth: 0)
    }

    /// NEWOBJ: `cls.__new__(cls, *args)`.
    mutating func newObject(_ clsIndex: Int, _ argsIndex: Int) throws -> Node {
        guard case let .global(module, name) = nodes[clsIndex] else {
            throw PickleError.malformed("NEWOBJ on something that is not an allowed class", offset: opOffset)
        }
        guard case let .tuple(args) = nodes[argsIndex] else {
            throw PickleError.malformed("NEWOBJ arguments for \(module).\(name) are not a tuple", offset: opOffset)
        }
        switch "\(module).\(name)" {
        case "collections.OrderedDict": return .dict(DictBox(kind: .orderedDict))
        case "collections.Counter": return .dict(DictBox(kind: .counter))
        case "builtins.set", "builtins.frozenset": return .set(ListBox([]))
        default: return try call(module: module, name: name, args: args, depth: 0)
        }
    }

    /// `depth` counts calls made by calls (`_rebuild_from_type_v2(func, type, args, state)` calls
    /// `func(*args)`, and `func` may be `_rebuild_from_type_v2` again): input-driven recursion.
    mutating func call(module: String, name: String, args: [Int], depth: Int) throws -> Node {
        let qualified = "\(module).\(name)"
        guard depth < limits.maxNestingDepth else {
            throw PickleError.limitExceeded(what: "calls nested inside calls (\(qualified))", limit: limits.maxNestingDepth, offset: opOffset)
        }
        switch qualified {
        case "collections.OrderedDict", "collections.Counter":
            let box = DictBox(kind: name == "Counter" ? .counter : .orderedDict)
            if let source = args.first {
                guard args.count == 1 else { throw unsupported(qualified, "more than one argument") }
                try fill(box, from: source, callable: qualified)
            }
            return .dict(box)
        case "builtins.set", "builtins.frozenset":
            guard args.count <= 1 else { throw unsupported(qualified, "more than one argument") }
            guard let source = args.first else { return .set(ListBox([])) }
            // The items are shared until either side appends; then they are copied.
            try spend(sequence(source)?.count ?? 0)
            switch nodes[source] {
            case let .list(box), let .set(box): return .set(ListBox(box.items))
            case let .tuple(items): return .set(ListBox(items))
            default: throw unsupported(qualified, "argument is not a list, tuple or set")
            }
        case "builtins.bytearray", "builtins.bytes":
            guard let source = args.first else { return .bytes([]) }
            if case let .bytes(b) = nodes[source], args.count == 1 { return .bytes(b) }
            if case .string = nodes[source], args.count == 2 { return try encode(args, callable: qualified) }
            throw unsupported(qualified, "argument is not bytes")
        case "_codecs.encode":
            return try encode(args, callable: qualified)
        case "torch.Size":
            guard args.count <= 1 else { throw unsupported(qualified, "more than one argument") }
            guard let source = args.first else { return .tuple([]) }
            guard let items = sequence(source) else { throw unsupported(qualified, "argument is not a tuple") }
            _ = try ints(source, what: "torch.Size")
            return .tuple(items)
        case "torch.device", "torch.serialization._get_layout", "builtins.complex":
            return .object(ObjectBox(module: module, name: name, args: args))
        case "torch._utils._rebuild_tensor":
            // (storage, storage_offset, size, stride), pre-1.x
            guard args.count == 4 else { throw unsupported(qualified, "expected 4 arguments, got \(args.count)") }
            return .tensor(try rebuildTensor(args, dtypeIndex: nil, callable: qualified))
        case "torch._utils._rebuild_tensor_v2":
            // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
            guard args.count == 6 || args.count == 7 else {
                throw unsupported(qualified, "expected 6 or 7 arguments, got \(args.count)")
            }
            return .tensor(try rebuildTensor(args, dtypeIndex: nil, callable: qualified))
        case "torch._utils._rebuild_tensor_v3":
            // (storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype[, metadata])
            guard args.count == 7 || args.count == 8 else {
                throw unsupported(qualified, "expected 7 or 8 arguments, got \(args.count)")
            }
            return .tensor(try rebuildTensor(args, dtypeIndex: args[6], callable: qualified))
        case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
             "torch.nn.parameter.Parameter":
            // (data, requires_grad, backward_hooks[, state]) / Parameter(data, requires_grad=True)
            guard let data = args.first, case var .tensor(t) = nodes[data] else {
                throw unsupported(qualified, "first argument is not a tensor")
            }
            t.isParameter = true
            if args.count >= 2 {
                guard case let .bool(g) = nodes[args[1]] else { throw unsupported(qualified, "requires_grad is not a bool") }
                t.requiresGrad = g
            } else {
                t.requiresGrad = true
            }
            return .tensor(t)
        case "torch._tensor._rebuild_from_type_v2":
            // (func, new_type, args, state): func(*args), then the subclass and its state (dropped).
            guard args.count == 4, case let .global(fm, fn) = nodes[args[0]], case let .tuple(inner) = nodes[args[2]] else {
                throw unsupported(qualified, "expected (function, type, args tuple, state)")
            }
            guard case let .global(tm, tn) = nodes[args[1]],
                  ["torch.Tensor", "torch.nn.parameter.Parameter"].contains("\(tm).\(tn)") else {
                throw unsupported(qualified, "tensor subclasses other than torch.Tensor / Parameter")
            }
            return try call(module: fm, name: fn, args: inner, depth: depth + 1)
        default:
            if extraGlobals.contains(qualified) { return .object(ObjectBox(module: module, name: name, args: args)) }
            if name.hasPrefix("_rebuild_") {
                throw unsupported(qualified, "DinoKit reads dense tensors only (not quantized, sparse, nested, meta or subclass tensors)")
            }
            throw unsupported(qualified, "this global is allowed as a value but cannot be called")
        }
    }

    /// BINPERSID: torch's `('storage', StorageClass, key, location, numel[, view_metadata])`.
    mutating func persistentLoad(_ pidIndex: Int) throws -> Node {
        guard case let .tuple(pid) = nodes[pidIndex], let first = pid.first else {
            throw PickleError.malformed("persistent id is not a tuple", offset: opOffset)
        }
        let typename = try text(first, what: "persistent id type")
        guard typename == "storage" else {
            if typename == "module" {
                throw unsupported("persistent id 'module'", "the file pickles a whole nn.Module class; save its state_dict() instead")
            }
            throw PickleError.malformed("persistent id of type '\(String(typename.prefix(40)).escapedForMessage)' (only 'storage' is allowed)", offset: opOffset)
        }
        guard pid.count == 5 || pid.count == 6 else {
            throw PickleError.malformed("storage persistent id has \(pid.count) fields, expected 5 or 6", offset: opOffset)
        }
        guard case let .global(module, cls) = nodes[pid[1]] else {
            throw PickleError.malformed("storage persistent id without a storage class", offset: opOffset)
        }
        let dtypeName: String
        if cls == "UntypedStorage" && (module == "torch.storage" || module == "torch") {
            dtypeName = "uint8"
        } else if let d = TorchDTypeNames.storageClassDType[cls], module == "torch" || module == "torch.cuda" {
            dtypeName = d
        } else {
            throw PickleError.malformed("'\("\(module).\(cls)".escapedForMessage)' is not a storage class", offset: opOffset)
        }
        let key = try keyText(pid[2], what: "storage key")
        let location = try text(pid[3], what: "storage location")
        guard case let .int(numel) = nodes[pid[4]], numel >= 0 else {
            throw PickleError.malformed("storage '\(key.escapedForMessage)' has a negative or non-integer size", offset: opOffset)
        }
        var view: PickleStorageRef.View?
        if pid.count == 6, case let .tuple(meta) = nodes[pid[5]] {
            guard meta.count == 3, case let .int(offset) = nodes[meta[1]], case let .int(size) = nodes[meta[2]],
                  offset >= 0, size >= 0 else {
                throw PickleError.malformed("storage '\(key.escapedForMessage)' has a malformed view (key, offset, size)", offset: opOffset)
            }
            view = .init(key: try keyText(meta[0], what: "storage view key"), offset: offset, numel: size)
        } else if pid.count == 6, case .none = nodes[pid[5]] {
            view = nil
        } else if pid.count == 6 {
            throw PickleError.malformed("storage '\(key.escapedForMessage)' has a malformed view", offset: opOffset)
        }
        return .storage(PickleStorageRef(key: key, storageClass: cls, torchDType: dtypeName, location: location,
                                         numel: numel, view: view))
    }

    // MARK: - Helpers

    private func unsupported(_ callable: String, _ detail: String) -> PickleError {
        .unsupportedCall(callable: callable, offset: opOffset, detail: detail)
    }

    private func sequence(_ index: Int) -> [Int]? {
        switch nodes[index] {
        case let .tuple(items): return items
        case let .list(box): return box.items
        default: return nil
        }
    }

    private mutating func ints(_ index: Int, what: String) throws -> [Int] {
        guard let items = sequence(index) else { throw PickleError.malformed("\(what) is not a tuple of integers", offset: opOffset) }
        try spend(items.count)
        return try items.map {
            guard case let .int(v) = nodes[$0] else { throw PickleError.malformed("\(what) holds a non-integer", offset: opOffset) }
            return v
        }
    }

    private mutating func text(_ index: Int, what: String) throws -> String {
        switch nodes[index] {
        case let .string(s): return s
        case let .bytes(b):
            try spend(b.count / 8)
            return String(decoding: b, as: UTF8.self) // Python 2 pickles may store bytes
        default: throw PickleError.malformed("\(what) is not a string", offset: opOffset)
        }
    }

    private mutating func keyText(_ index: Int, what: String) throws -> String {
        if case let .int(v) = nodes[index] { return String(v) }
        return try text(index, what: what)
    }

    private mutating func fill(_ box: DictBox, from source: Int, callable: String) throws {
        switch nodes[source] {
        case let .dict(other):
            for (k, v) in zip(other.keys, other.values) {
                box.set(key: try hashKey(k, depth: 0), keyNode: k, value: v)
            }
        case .list, .tuple:
            for pair in sequence(source) ?? [] {
                try spend(1)
                guard let kv = sequence(pair), kv.count == 2 else { throw unsupported(callable, "items are not (key, value) pairs") }
                box.set(key: try hashKey(kv[0], depth: 0), keyNode: kv[0], value: kv[1])
            }
        default:
            throw unsupported(callable, "argument is not a dict or a list of pairs")
        }
    }

    /// `_codecs.encode(text, encoding)`: how protocol 2 spells `bytes`.
    private mutating func encode(_ args: [Int], callable: String) throws -> Node {
        guard args.count == 2, case let .string(s) = nodes[args[0]], case let .string(encoding) = nodes[args[1]] else {
            throw unsupported(callable, "expected (str, encoding)")
        }
        // A new byte array each time: one shared long string encoded again and again adds up.
        try spend(s.utf8.count / 8)
        switch encoding.lowercased() {
        case "latin1", "latin-1", "iso-8859-1", "iso8859-1":
            var out: [UInt8] = []
            out.reserveCapacity(s.unicodeScalars.count)
            for scalar in s.unicodeScalars {
                guard scalar.value <= 0xFF else { throw unsupported(callable, "character beyond latin-1") }
                out.append(UInt8(scalar.value))
            }
            return .bytes(out)
        case "utf-8", "utf8":
            return .bytes(Array(s.utf8))
        case "ascii":
            guard s.utf8.allSatisfy({ $0 < 0x80 }) else { throw unsupported(callable, "non-ASCII text") }
            return .bytes(Array(s.utf8))
        default:
            throw unsupported(callable, "encoding '\(String(encoding.prefix(20)).escapedForMessage)'")
        }
    }

    private mutating func rebuildTensor(_ args: [Int], dtypeIndex: Int?, callable: String) throws -> PickleTensor {
        guard case let .storage(storage) = nodes[args[0]] else { throw unsupported(callable, "first argument is not a storage") }
        guard case let .int(offset) = nodes[args[1]], offset >= 0 else {
            throw PickleError.malformed("tensor storage offset is negative or not an integer", offset: opOffset)
        }
        let shape = try ints(args[2], what: "tensor size")
        let strides = try ints(args[3], what: "tensor stride")
        guard shape.count == strides.count else {
            throw PickleError.malformed("tensor has \(shape.count) sizes but \(strides.count) strides", offset: opOffset)
        }
        guard shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }) else {
            throw PickleError.malformed("tensor has negative sizes \(shape) or strides \(strides)", offset: opOffset)
        }
        var requiresGrad = false
        if args.count > 4 {
            guard case let .bool(g) = nodes[args[4]] else { throw PickleError.malformed("requires_grad is not a bool", offset: opOffset) }
            requiresGrad = g
        }
        var dtype = storage.torchDType
        if let dtypeIndex {
            guard case let .global(module, name) = nodes[dtypeIndex], module == "torch",
                  TorchDTypeNames.knownDTypes.contains(name) else {
                throw PickleError.malformed("tensor dtype is not a torch dtype", offset: opOffset)
            }
            dtype = name
        }
        return PickleTensor(storage: storage, torchDType: dtype, storageOffset: offset, shape: shape, strides: strides,
                            requiresGrad: requiresGrad, isParameter: false)
    }
}
