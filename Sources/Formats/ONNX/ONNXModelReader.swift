import TensorStore

/// Reads ONNX files into tensor stores: every initializer, with the names recovered where the
/// file is a DINOv2 export. A DinoKit export (`dinokit.version` in its metadata) carries the hub
/// tensors under their hub names plus derived tensors and constants under `dinokit::` names,
/// which are dropped; exports made by torch.onnx are mapped back as far as the graph shows
/// (`TorchONNXNames`); any other model comes back with its initializers as named.
public enum ONNXModelReader {
    /// Prefix of the initializers a DinoKit export derives (baked position tables, shape
    /// constants): not weights.
    public static let derivedPrefix = "dinokit::"
    /// An int8 export (`export-onnx --dtype int8`) stores each quantized Linear weight `<hub name>`
    /// as `dinokit::int8/<hub name>` (INT8, the weight's shape) beside its per-output-channel
    /// scales `dinokit::int8/<hub name>.scale` (FLOAT, [out]).
    public static let int8Prefix = derivedPrefix + "int8/"
    public static let int8ScaleSuffix = ".scale"

    /// Metadata keys a DinoKit export writes.
    public enum MetadataKey {
        public static let version = "dinokit.version"
        public static let variant = "dinokit.variant"
        public static let interpolation = "dinokit.interpolation"
        public static let numHeads = "dinokit.num_heads"
    }

    /// True when `head` (the first bytes of a file) starts like a serialized ModelProto: field 1
    /// (ir_version, a small varint) followed by another ModelProto field's tag.
    public static func isONNX(head: UnsafeRawBufferPointer) -> Bool {
        guard head.count >= 3, head[0] == 0x08 else { return false }
        var i = 1
        var version = 0
        var shift = 0
        while i < head.count, i < 4 {
            version |= Int(head[i] & 0x7F) << shift
            shift += 7
            i += 1
            if head[i - 1] & 0x80 == 0 { break }
        }
        guard head[i - 1] & 0x80 == 0, (1...64).contains(version), i < head.count else { return false }
        // Tags of ModelProto fields 2-8 (wire types as declared) and 14, 20, 25, 26.
        let tag = head[i]
        if [0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72].contains(tag) { return true }
        if i + 1 < head.count, head[i + 1] == 0x01, [0xA2, 0xCA, 0xD2].contains(tag) { return true }
        return false
    }

    /// The whole model as DinoKit reads it: graph summary and initializers under their own names.
    public static func readModel(path: String, limits: ReadLimits = .default) throws -> ONNXModelFile {
        let file = try MappedFile(path: path)
        return try ONNXModelFile(file: file, limits: limits)
    }

    /// The weights of an ONNX file (see the type comment for the names).
    public static func read(path: String, limits: ReadLimits = .default) throws -> TensorStore {
        try weights(of: readModel(path: path, limits: limits))
    }

    public static func isDinoKitExport(_ model: ONNXModelFile) -> Bool {
        model.metadata[MetadataKey.version] != nil
    }

    /// The weights `model` carries, under hub names for a DinoKit export, recovered names for a
    /// torch.onnx export of DINOv2, or the initializer names otherwise. The model's metadata props
    /// come along; a DinoKit export's head count is recorded as `num_heads` (what the rest of
    /// DinoKit reads for widths that are not a multiple of 64). The quantized weights of an int8
    /// export come back as the float32 weights its graph computes with, q · scale (not the
    /// weights it was exported from: quantization lost the rest).
    public static func weights(of model: ONNXModelFile) throws -> TensorStore {
        var store: TensorStore
        if isDinoKitExport(model) {
            store = TensorStore()
            for (name, t) in model.initializers.tensors {
                if name.hasPrefix(int8Prefix) && !name.hasSuffix(int8ScaleSuffix) {
                    try store.insert(try dequantized(model, name, t), named: String(name.dropFirst(int8Prefix.count)))
                } else if !name.hasPrefix(derivedPrefix) {
                    try store.insert(t, named: name)
                }
            }
        } else if let recovered = try TorchONNXNames.recover(model) {
            store = recovered
        } else {
            store = model.initializers
        }
        for (k, v) in model.metadata where store.metadata[k] == nil { store.metadata[k] = v }
        if let heads = model.metadata[MetadataKey.numHeads] { store.metadata["num_heads"] = heads }
        return store
    }

    /// q · scale[row] as float32, for the int8 weight `name` and its scales.
    static func dequantized(_ model: ONNXModelFile, _ name: String, _ q: Tensor) throws -> Tensor {
        let bad = { (detail: String) in ONNXError.badTensor(path: model.path, tensor: name, detail: detail) }
        guard q.dtype == .i8, q.shape.rank >= 1 else { throw bad("an int8 weight must be INT8 with at least one dimension, not \(q.dtype) \(q.shape)") }
        guard let s = model.initializers.tensors[name + int8ScaleSuffix] else { throw bad("its scales '\(name + int8ScaleSuffix)' are missing") }
        let rows = q.shape[0]
        guard s.dtype == .f32, s.shape.dims == [rows] else { throw bad("its scales are \(s.dtype) \(s.shape), not F32 [\(rows)]") }
        let values = q.floats(), scales = s.floats()
        let cols = rows == 0 ? 0 : values.count / rows
        var out = [Float](repeating: 0, count: values.count)
        for r in 0..<rows { for k in 0..<cols { out[r * cols + k] = values[r * cols + k] * scales[r] } }
        do {
            return try Tensor(shape: q.shape, floats: out)
        } catch let e as TensorStoreError {
            throw ONNXError.store(path: model.path, e)
        }
    }
}
