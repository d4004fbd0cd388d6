import CProtobufC
import Formats
import ONNXProto
import TensorStore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where each initializer's bytes go when a model is written with external data: tensors of at
/// least `threshold` bytes go to one side file (`<model>.data`), at offsets aligned for mmap.
public struct ExternalDataLayout: Sendable {
    public struct Entry: Sendable {
        public var offset: Int
        public var length: Int
    }

    /// The side file's name, relative to the model's folder (what `location` records).
    public var location: String
    public var entries: [String: Entry] = [:]
    public var totalBytes = 0

    /// Lays out the graph's initializers: `alignment` for every tensor, `largeAlignment` for
    /// tensors of 1 MiB and more (what onnx's own external-data writer does for mmap).
    public init(location: String, initializers: [ONNXInitializer], threshold: Int,
                alignment: Int = 64, largeAlignment: Int = 65_536) {
        self.location = location
        var offset = 0
        for i in initializers where i.tensor.byteCount >= threshold && i.tensor.byteCount > 0 {
            let a = i.tensor.byteCount >= 1 << 20 ? largeAlignment : alignment
            offset = (offset + a - 1) / a * a
            entries[i.name] = Entry(offset: offset, length: i.tensor.byteCount)
            offset += i.tensor.byteCount
        }
        totalBytes = offset
    }
}

/// Serializes an `ONNXModel` with the protobuf-c code generated from onnx.proto. The C structs
/// live in an arena freed when the writer is done; raw_data points straight at the tensors'
/// bytes (which the model keeps alive), and the packed bytes stream into the output file, so
/// the weights are never copied in memory.
enum ONNXProtoWriter {
    /// Writes `model` to `path` (atomically) and, with a layout, the external data file beside it
    /// first. Returns the model file's size.
    @discardableResult
    static func write(_ model: ONNXModel, to path: String, external: ExternalDataLayout?) throws -> Int {
        if let external {
            try writeExternalData(model.graph, layout: external, to: sidePath(modelPath: path, location: external.location))
        }
        let arena = ProtoArena()
        let proto = try arena.model(model, external: external)
        var size = 0
        try AtomicFileWriter.write(to: path) { writer in
            let sink = BufferedSink(writer: writer)
            try sink.pack(proto)
            size = writer.bytesWritten
        }
        return size
    }

    /// The packed size of `model` (no file written).
    static func packedSize(_ model: ONNXModel, external: ExternalDataLayout?) throws -> Int {
        let arena = ProtoArena()
        let proto = try arena.model(model, external: external)
        return withExtendedLifetime(model) { Int(onnx__model_proto__get_packed_size(proto)) }
    }

    static func sidePath(modelPath: String, location: String) -> String {
        guard let slash = modelPath.lastIndex(of: "/") else { return location }
        return String(modelPath[...slash]) + location
    }

    static func writeExternalData(_ graph: ONNXGraph, layout: ExternalDataLayout, to path: String) throws {
        try AtomicFileWriter.write(to: path) { w in
            for i in graph.initializers {
                guard let e = layout.entries[i.name] else { continue }
                try w.writeZeros(e.offset - w.bytesWritten)
                try i.tensor.withContiguousBytes { try w.write($0) }
            }
        }
    }
}

/// A ProtobufCBuffer whose `append` goes through a 1 MiB buffer into an AtomicFileWriter.
/// protobuf-c appends every tag and varint separately; large byte fields pass straight through.
private final class BufferedSink {
    let writer: AtomicFileWriter
    var buffer: [UInt8] = []
    var error: Error?
    static let capacity = 1 << 20

    init(writer: AtomicFileWriter) {
        self.writer = writer
        buffer.reserveCapacity(Self.capacity)
    }

    func append(_ bytes: UnsafeRawBufferPointer) {
        guard error == nil else { return }
        do {
            if buffer.count + bytes.count > Self.capacity { try flush() }
            if bytes.count >= Self.capacity {
                try writer.write(bytes)
            } else {
                buffer.append(contentsOf: bytes)
            }
        } catch {
            self.error = error
        }
    }

    func flush() throws {
        if !buffer.isEmpty { try writer.write(buffer) }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Packs the message through this sink. The C side sees a ProtobufCBuffer followed by a
    /// pointer back to this object (the "subclass" layout protobuf-c's own buffers use).
    func pack(_ model: UnsafeMutablePointer<Onnx__ModelProto>) throws {
        let baseSize = MemoryLayout<ProtobufCBuffer>.stride
        let raw = UnsafeMutableRawPointer.allocate(byteCount: baseSize + MemoryLayout<UnsafeRawPointer>.stride, alignment: 16)
        defer { raw.deallocate() }
        raw.bindMemory(to: ProtobufCBuffer.self, capacity: 1).initialize(to: ProtobufCBuffer(append: { buffer, len, data in
            guard let buffer, let data, len > 0 else { return }
            let context = UnsafeMutableRawPointer(buffer).load(fromByteOffset: MemoryLayout<ProtobufCBuffer>.stride,
                                                               as: UnsafeRawPointer.self)
            Unmanaged<BufferedSink>.fromOpaque(context).takeUnretainedValue()
                .append(UnsafeRawBufferPointer(start: data, count: len))
        }))
        (raw + baseSize).storeBytes(of: UnsafeRawPointer(Unmanaged.passUnretained(self).toOpaque()), as: UnsafeRawPointer.self)
        withExtendedLifetime(self) {
            _ = onnx__model_proto__pack_to_buffer(model, raw.assumingMemoryBound(to: ProtobufCBuffer.self))
        }
        if let error { throw error }
        try flush()
    }
}

/// The C structs of one model. Everything allocated here is freed with the arena; byte fields
/// that point at tensors are not owned.
private final class ProtoArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    deinit { for p in allocations { free(p) } }

    func alloc<T>(_: T.Type, count: Int = 1) throws -> UnsafeMutablePointer<T> {
        guard let p = calloc(Swift.max(count, 1), MemoryLayout<T>.stride) else {
            throw ONNXExportError.outOfMemory("building the ONNX protobuf")
        }
        allocations.append(p)
        return p.bindMemory(to: T.self, capacity: Swift.max(count, 1))
    }

    func string(_ s: String) throws -> UnsafeMutablePointer<CChar> {
        guard let p = strdup(s) else { throw ONNXExportError.outOfMemory("building the ONNX protobuf") }
        allocations.append(UnsafeMutableRawPointer(p))
        return p
    }

    func array<T>(_ xs: [T]) throws -> UnsafeMutablePointer<T>? {
        guard !xs.isEmpty else { return nil }
        let p = try alloc(T.self, count: xs.count)
        p.initialize(from: xs, count: xs.count)
        return p
    }

    func strings(_ xs: [String]) throws -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
        try array(xs.map { Optional(try string($0)) })
    }

    func bytes(_ s: String) throws -> ProtobufCBinaryData {
        let p = try string(s)
        return ProtobufCBinaryData(len: strlen(p), data: UnsafeMutableRawPointer(p).assumingMemoryBound(to: UInt8.self))
    }

    // MARK: - Messages

    func model(_ m: ONNXModel, external: ExternalDataLayout?) throws -> UnsafeMutablePointer<Onnx__ModelProto> {
        let p = try alloc(Onnx__ModelProto.self)
        onnx__model_proto__init(p)
        p.pointee.has_ir_version = 1
        p.pointee.ir_version = Int64(m.irVersion)
        let opset = try alloc(Onnx__OperatorSetIdProto.self)
        onnx__operator_set_id_proto__init(opset)
        opset.pointee.domain = try string("")
        opset.pointee.has_version = 1
        opset.pointee.version = Int64(m.opset)
        p.pointee.n_opset_import = 1
        p.pointee.opset_import = try array([Optional(opset)])
        p.pointee.producer_name = try string(m.producerName)
        p.pointee.producer_version = try string(m.producerVersion)
        if !m.docString.isEmpty { p.pointee.doc_string = try string(m.docString) }
        p.pointee.graph = try graph(m.graph, external: external)
        p.pointee.n_metadata_props = m.metadata.count
        p.pointee.metadata_props = try array(m.metadata.map { Optional(try entry($0.key, $0.value)) })
        return p
    }

    func entry(_ key: String, _ value: String) throws -> UnsafeMutablePointer<Onnx__StringStringEntryProto> {
        let e = try alloc(Onnx__StringStringEntryProto.self)
        onnx__string_string_entry_proto__init(e)
        e.pointee.key = try string(key)
        e.pointee.value = try string(value)
        return e
    }

    func graph(_ g: ONNXGraph, external: ExternalDataLayout?) throws -> UnsafeMutablePointer<Onnx__GraphProto> {
        let p = try alloc(Onnx__GraphProto.self)
        onnx__graph_proto__init(p)
        p.pointee.name = try string(g.name)
        p.pointee.n_node = g.nodes.count
        p.pointee.node = try array(g.nodes.map { Optional(try node($0)) })
        p.pointee.n_initializer = g.initializers.count
        p.pointee.initializer = try array(g.initializers.map { Optional(try tensor($0, external: external)) })
        p.pointee.n_input = g.inputs.count
        p.pointee.input = try array(g.inputs.map { Optional(try valueInfo($0)) })
        p.pointee.n_output = g.outputs.count
        p.pointee.output = try array(g.outputs.map { Optional(try valueInfo($0)) })
        return p
    }

    func node(_ n: ONNXNode) throws -> UnsafeMutablePointer<Onnx__NodeProto> {
        let p = try alloc(Onnx__NodeProto.self)
        onnx__node_proto__init(p)
        p.pointee.n_input = n.inputs.count
        p.pointee.input = try strings(n.inputs)
        p.pointee.n_output = n.outputs.count
        p.pointee.output = try strings(n.outputs)
        p.pointee.name = try string(n.name)
        p.pointee.op_type = try string(n.opType)
        p.pointee.n_attribute = n.attributes.count
        p.pointee.attribute = try array(n.attributes.map { Optional(try attribute($0)) })
        return p
    }

    func attribute(_ a: ONNXAttribute) throws -> UnsafeMutablePointer<Onnx__AttributeProto> {
        let p = try alloc(Onnx__AttributeProto.self)
        onnx__attribute_proto__init(p)
        p.pointee.name = try string(a.name)
        p.pointee.has_type = 1
        switch a.value {
        case let .int(v):
            p.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT
            p.pointee.has_i = 1
            p.pointee.i = Int64(v)
        case let .float(v):
            p.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT
            p.pointee.has_f = 1
            p.pointee.f = v
        case let .string(v):
            p.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING
            p.pointee.has_s = 1
            p.pointee.s = try bytes(v)
        case let .ints(v):
            p.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS
            p.pointee.n_ints = v.count
            p.pointee.ints = try array(v.map(Int64.init))
        case let .graph(g):
            p.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH
            p.pointee.g = try graph(g, external: nil)
        }
        return p
    }

    func valueInfo(_ v: ONNXValueInfo) throws -> UnsafeMutablePointer<Onnx__ValueInfoProto> {
        let p = try alloc(Onnx__ValueInfoProto.self)
        onnx__value_info_proto__init(p)
        p.pointee.name = try string(v.name)
        let type = try alloc(Onnx__TypeProto.self)
        onnx__type_proto__init(type)
        let tensor = try alloc(Onnx__TypeProto__Tensor.self)
        onnx__type_proto__tensor__init(tensor)
        tensor.pointee.has_elem_type = 1
        tensor.pointee.elem_type = v.elementType
        let shape = try alloc(Onnx__TensorShapeProto.self)
        onnx__tensor_shape_proto__init(shape)
        shape.pointee.n_dim = v.dims.count
        shape.pointee.dim = try array(v.dims.map { d -> UnsafeMutablePointer<Onnx__TensorShapeProto__Dimension>? in
            let dim = try alloc(Onnx__TensorShapeProto__Dimension.self)
            onnx__tensor_shape_proto__dimension__init(dim)
            switch d {
            case let .value(n):
                dim.pointee.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                dim.pointee.dim_value = Int64(n)
            case let .param(s):
                dim.pointee.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
                dim.pointee.dim_param = try string(s)
            case .unknown:
                break
            }
            return dim
        })
        tensor.pointee.shape = shape
        type.pointee.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE
        type.pointee.tensor_type = tensor
        p.pointee.type = type
        return p
    }

    func tensor(_ i: ONNXInitializer, external: ExternalDataLayout?) throws -> UnsafeMutablePointer<Onnx__TensorProto> {
        let p = try alloc(Onnx__TensorProto.self)
        onnx__tensor_proto__init(p)
        let t = i.tensor
        p.pointee.name = try string(i.name)
        p.pointee.n_dims = t.shape.rank
        p.pointee.dims = try array(t.shape.dims.map(Int64.init))
        p.pointee.has_data_type = 1
        p.pointee.data_type = ONNXDataType.code(t.dtype)
        if let external, let e = external.entries[i.name] {
            let entries = [("location", external.location), ("offset", String(e.offset)), ("length", String(e.length))]
            p.pointee.n_external_data = entries.count
            p.pointee.external_data = try array(entries.map { Optional(try entry($0.0, $0.1)) })
            p.pointee.has_data_location = 1
            p.pointee.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL
        } else {
            p.pointee.has_raw_data = 1
            // The initializer holds a contiguous tensor whose storage outlives the packing.
            let start = t.byteCount == 0 ? nil : t.storage.bytes.baseAddress.map { $0 + t.offset * t.dtype.size }
            p.pointee.raw_data = ProtobufCBinaryData(len: t.byteCount,
                                                     data: start.map { UnsafeMutableRawPointer(mutating: $0).assumingMemoryBound(to: UInt8.self) })
        }
        return p
    }
}
