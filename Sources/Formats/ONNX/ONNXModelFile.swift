import OrderedCollections
import TensorStore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What an ONNX file holds, as far as DinoKit reads it: the model's identity and metadata, the
/// top-level graph's nodes (op, inputs, outputs — attributes and subgraphs are not read), its
/// inputs and outputs, and every initializer as a tensor under its own name. Initializers stored
/// as raw_data or external data are views of the mapped files (no copy); typed fields
/// (float_data, int64_data, ...) are decoded into owned memory.
public struct ONNXModelFile: Sendable {
    public struct Node: Sendable {
        public var opType: String
        public var domain: String
        public var name: String
        public var inputs: [String]
        public var outputs: [String]
    }

    public struct ValueInfo: Sendable {
        public var name: String
        /// ONNX element type code (nil: not a tensor type or not given).
        public var elementType: Int32?
        /// nil when the shape is not given.
        public var dims: [ONNXDimension]?

        public var typeDescription: String {
            let t = elementType.map { ONNXDataType.name($0).lowercased() } ?? "?"
            return dims.map { "\(t)[\($0.map(\.description).joined(separator: ","))]" } ?? t
        }
    }

    public var path: String
    public var irVersion: Int64 = 0
    public var producerName = ""
    public var producerVersion = ""
    public var domain = ""
    public var opsetImports: [(domain: String, version: Int64)] = []
    public var metadata: OrderedDictionary<String, String> = [:]
    public var graphName = ""
    public var nodes: [Node] = []
    public var inputs: [ValueInfo] = []
    public var outputs: [ValueInfo] = []
    public var initializers = TensorStore()
    public var sparseInitializerCount = 0
    public var functionCount = 0
    /// External data files the initializers read from, relative to the model's folder.
    public var externalDataFiles: [String] = []

    /// The default-domain opset version (`ai.onnx`), when imported.
    public var opsetVersion: Int64? {
        opsetImports.first { $0.domain.isEmpty || $0.domain == "ai.onnx" }?.version
    }

    /// A few lines that describe the graph (for `dinokit inspect`): producer, IR and opset,
    /// inputs and outputs with their shapes, node count by op type, initializers, external data.
    public var graphSummary: [(key: String, value: String)] {
        var ops: [String: Int] = [:]
        for n in nodes { ops[n.opType, default: 0] += 1 }
        let histogram = ops.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            .map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        var lines: [(String, String)] = [
            ("producer", [producerName, producerVersion].filter { !$0.isEmpty }.joined(separator: " ")),
            ("ir_version", String(irVersion)),
            ("opsets", opsetImports.map { "\($0.domain.isEmpty ? "ai.onnx" : $0.domain) \($0.version)" }.joined(separator: ", ")),
            ("inputs", inputs.filter { initializers[$0.name] == nil }.map { "\($0.name) \($0.typeDescription)" }.joined(separator: "; ")),
            ("outputs", outputs.map { "\($0.name) \($0.typeDescription)" }.joined(separator: "; ")),
            ("nodes", "\(nodes.count) (\(histogram))"),
            ("initializers", "\(initializers.count), \(initializers.byteCount) bytes"),
        ]
        if !externalDataFiles.isEmpty { lines.append(("external data", externalDataFiles.joined(separator: ", "))) }
        if sparseInitializerCount > 0 { lines.append(("sparse initializers (not read)", String(sparseInitializerCount))) }
        if functionCount > 0 { lines.append(("local functions", String(functionCount))) }
        return lines
    }

    /// Parses a mapped file. External data is resolved against the file's folder. raw_data and
    /// external data are mapped; what decoding typed fields allocates is bounded by `limits`.
    init(file: MappedFile, limits: ReadLimits = .default) throws {
        path = file.path
        let budget = MemoryBudget(limits)
        var resolver = ExternalDataResolver(modelPath: file.path)
        var cursor = ProtoCursor(data: file.bytes, range: 0..<file.count, path: file.path)
        var graph: ProtoCursor?
        while let f = try cursor.next() {
            switch f.number {
            case 1: irVersion = try cursor.int64(f)
            case 2: producerName = try cursor.string(f)
            case 3: producerVersion = try cursor.string(f)
            case 4: domain = try cursor.string(f)
            case 7: graph = try cursor.message(f)
            case 8:
                var c = try cursor.message(f)
                var d = "", v: Int64 = 0
                while let g = try c.next() {
                    if g.number == 1 { d = try c.string(g) } else if g.number == 2 { v = try c.int64(g) }
                }
                opsetImports.append((d, v))
            case 14:
                let (k, v) = try Self.entry(cursor.message(f))
                metadata[k] = v
            case 25: functionCount += 1
            default: break
            }
        }
        guard var g = graph else { throw ONNXError.missingGraph(path: file.path) }
        while let f = try g.next() {
            switch f.number {
            case 1: nodes.append(try Self.node(g.message(f)))
            case 2: graphName = try g.string(f)
            case 5:
                let (name, tensor) = try Self.initializer(g.message(f), file: file, resolver: &resolver, budget: budget)
                guard initializers[name] == nil else { throw ONNXError.duplicateInitializer(path: file.path, tensor: name) }
                try initializers.insert(tensor, named: name)
            case 11: inputs.append(try Self.valueInfo(g.message(f)))
            case 12: outputs.append(try Self.valueInfo(g.message(f)))
            case 15: sparseInitializerCount += 1
            default: break
            }
        }
        externalDataFiles = resolver.locations
    }

    // MARK: - Messages

    static func entry(_ c: ProtoCursor) throws -> (String, String) {
        var c = c
        var key = "", value = ""
        while let f = try c.next() {
            if f.number == 1 { key = try c.string(f) } else if f.number == 2 { value = try c.string(f) }
        }
        return (key, value)
    }

    static func node(_ c: ProtoCursor) throws -> Node {
        var c = c
        var n = Node(opType: "", domain: "", name: "", inputs: [], outputs: [])
        while let f = try c.next() {
            switch f.number {
            case 1: n.inputs.append(try c.string(f))
            case 2: n.outputs.append(try c.string(f))
            case 3: n.name = try c.string(f)
            case 4: n.opType = try c.string(f)
            case 7: n.domain = try c.string(f)
            default: break
            }
        }
        return n
    }

    static func valueInfo(_ c: ProtoCursor) throws -> ValueInfo {
        var c = c
        var info = ValueInfo(name: "", elementType: nil, dims: nil)
        while let f = try c.next() {
            if f.number == 1 { info.name = try c.string(f); continue }
            guard f.number == 2 else { continue }
            var type = try c.message(f)
            while let t = try type.next() {
                guard t.number == 1 else { continue }  // tensor_type only
                var tensor = try type.message(t)
                while let e = try tensor.next() {
                    if e.number == 1 { info.elementType = Int32(truncatingIfNeeded: try tensor.int64(e)) }
                    guard e.number == 2 else { continue }
                    var dims: [ONNXDimension] = []
                    var shape = try tensor.message(e)
                    while let d = try shape.next() {
                        guard d.number == 1 else { continue }
                        var dim = try shape.message(d)
                        var value = ONNXDimension.unknown
                        while let x = try dim.next() {
                            if x.number == 1 { value = .value(Int(truncatingIfNeeded: try dim.int64(x))) }
                            if x.number == 2 { value = .param(try dim.string(x)) }
                        }
                        dims.append(value)
                    }
                    info.dims = dims
                }
            }
        }
        return info
    }

    /// A TensorProto as a tensor: raw_data and external data are mapped, typed fields decoded.
    static func initializer(_ c: ProtoCursor, file: MappedFile, resolver: inout ExternalDataResolver,
                            budget: MemoryBudget) throws -> (String, Tensor) {
        var c = c
        var name = ""
        var dims: [UInt64] = []
        var dataType: Int32 = 0
        var raw: Range<Int>?
        var typed: [ProtoCursor.Field] = []
        var external: [String: String] = [:]
        var externalLocation = false
        var segmented = false
        while let f = try c.next() {
            switch f.number {
            case 1: try c.appendVarints(f, to: &dims)
            case 2: dataType = Int32(truncatingIfNeeded: try c.int64(f))
            case 3: segmented = true
            case 4, 5, 6, 7, 10, 11: typed.append(f)
            case 8: name = try c.string(f)
            case 9: raw = try c.range(f)
            case 13:
                let (k, v) = try entry(c.message(f))
                external[k] = v
            case 14: externalLocation = try c.varint(f) == 1
            default: break
            }
        }
        let path = file.path
        guard !segmented else { throw ONNXError.badTensor(path: path, tensor: name, detail: "segmented tensors are not supported") }
        guard let dtype = ONNXDataType.dtype(dataType) else {
            throw ONNXError.unsupportedDataType(path: path, tensor: name, dataType: ONNXDataType.name(dataType))
        }
        let shapeDims = dims.map { Int(truncatingIfNeeded: $0) }
        let shape = Shape(shapeDims)
        guard dims.allSatisfy({ $0 <= UInt64(Int.max) }), let count = shape.checkedElementCount,
              let byteCount = shape.checkedByteCount(elementSize: dtype.size) else {
            throw ONNXError.badTensor(path: path, tensor: name, detail: "dims \(dims) are negative or too large")
        }
        if externalLocation || !external.isEmpty {
            let storage = try resolver.storage(for: name, entries: external, byteCount: byteCount)
            return (name, try Tensor(storage: storage, dtype: dtype, shape: shape))
        }
        if let raw {
            guard raw.count == byteCount else {
                throw ONNXError.badTensor(path: path, tensor: name, detail: "raw_data has \(raw.count) bytes, dims \(shapeDims) of \(dtype) need \(byteCount)")
            }
            return (name, try Tensor(storage: Storage(file: file, offset: raw.lowerBound, length: raw.count), dtype: dtype, shape: shape))
        }
        return (name, try typedTensor(typed, cursor: c, name: name, dtype: dtype, shape: shape, count: count, path: path, budget: budget))
    }

    /// Decodes float_data / int32_data / int64_data / double_data / uint64_data into owned memory.
    static func typedTensor(_ fields: [ProtoCursor.Field], cursor c: ProtoCursor, name: String, dtype: DType,
                            shape: Shape, count: Int, path: String, budget: MemoryBudget) throws -> Tensor {
        func charge(_ bytes: Int?, _ what: String) throws {
            do {
                try budget.charge(bytes ?? Int.max, for: "\(what) of initializer '\(name.escapedForMessage)'")
            } catch let error as TensorStoreError {
                throw ONNXError.store(path: path, error)
            }
        }
        let expectedField: Int
        switch dtype {
        case .f32: expectedField = 4
        case .i64: expectedField = 7
        case .f64: expectedField = 10
        case .u32, .u64: expectedField = 11
        default: expectedField = 5  // int32_data carries every narrower type, bit patterns in the low bits
        }
        var values: [UInt64] = []
        for f in fields where f.number == expectedField {
            // Every value is held as 8 bytes here, and a packed field of n bytes holds up to n
            // varints: a small file could otherwise make this array 8 times its size.
            let width = expectedField == 4 ? 4 : expectedField == 10 ? 8 : 1
            if case let .bytes(r) = f.value { try charge(Checked.product(r.count / width, 8), "decoding the typed data") }
            switch expectedField {
            case 4: try c.appendFixed(f, width: 4, to: &values)
            case 10: try c.appendFixed(f, width: 8, to: &values)
            default: try c.appendVarints(f, to: &values)
            }
            guard values.count <= count else { break }
        }
        if let other = fields.first(where: { $0.number != expectedField }), values.isEmpty, count > 0 {
            throw ONNXError.badTensor(path: path, tensor: name, detail: "\(dtype) data stored in field \(other.number), which does not hold that type")
        }
        guard values.count == count else {
            throw ONNXError.badTensor(path: path, tensor: name, detail: "\(values.count) values for dims \(shape) (\(count) elements)")
        }
        // values.count == count, and count × 8 was charged: count × dtype.size cannot overflow.
        try charge(count * dtype.size, "the data")
        let storage = Storage(byteCount: count * dtype.size)
        let out = storage.mutableBytes
        for (i, v) in values.enumerated() {
            switch dtype.size {
            case 1: out.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: i, as: UInt8.self)
            case 2: out.storeBytes(of: UInt16(truncatingIfNeeded: v).littleEndian, toByteOffset: 2 * i, as: UInt16.self)
            case 4: out.storeBytes(of: UInt32(truncatingIfNeeded: v).littleEndian, toByteOffset: 4 * i, as: UInt32.self)
            default: out.storeBytes(of: v.littleEndian, toByteOffset: 8 * i, as: UInt64.self)
            }
        }
        return try Tensor(storage: storage, dtype: dtype, shape: shape)
    }
}

/// Resolves `external_data` entries against the model's folder, refusing anything that could
/// reach outside it, and maps each data file once.
struct ExternalDataResolver {
    let modelPath: String
    let directory: String
    private var files: [String: MappedFile] = [:]
    private(set) var locations: [String] = []

    init(modelPath: String) {
        self.modelPath = modelPath
        if let slash = modelPath.lastIndex(of: "/") {
            let d = String(modelPath[..<slash])
            directory = d.isEmpty ? "/" : d
        } else {
            directory = "."
        }
    }

    mutating func storage(for tensor: String, entries: [String: String], byteCount: Int) throws -> Storage {
        let modelPath = self.modelPath
        let fail = { (detail: String) -> ONNXError in .externalData(path: modelPath, tensor: tensor, detail: detail) }
        guard let location = entries["location"], !location.isEmpty else { throw fail("no location given") }
        // The path rule is checked before any byte is read (ContainedPath: relative, no '..',
        // resolving inside the model's folder).
        let real: String
        do { real = try ContainedPath.resolve(location, in: directory) } catch {
            throw fail("location \(error)")
        }
        func number(_ key: String) throws -> Int? {
            guard let s = entries[key] else { return nil }
            guard !s.isEmpty, s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let v = Int(s) else {
                throw fail("\(key) '\(s.escapedForMessage)' is not a non-negative integer")
            }
            return v
        }
        let offset = try number("offset") ?? 0
        let length = try number("length")
        let file = try mapped(location, real: real, fail: fail)
        guard offset <= file.count else { throw fail("offset \(offset) is past the end of \(location.escapedForMessage) (\(file.count) bytes)") }
        let available = file.count - offset
        let n = length ?? available
        guard n <= available else {
            // Not offset + n: a length near Int.max would overflow the message itself.
            throw fail("\(n) bytes from offset \(offset) lie outside \(location.escapedForMessage) (\(file.count) bytes)")
        }
        guard n == byteCount else { throw fail("holds \(n) bytes, the tensor's dims need \(byteCount)") }
        return try Storage(file: file, offset: offset, length: n)
    }

    private mutating func mapped(_ location: String, real: String, fail: (String) -> ONNXError) throws -> MappedFile {
        if let f = files[location] { return f }
        let f: MappedFile
        do { f = try MappedFile(path: real) } catch { throw fail("cannot map '\(location.escapedForMessage)': \(error)") }
        files[location] = f
        locations.append(location)
        return f
    }
}
