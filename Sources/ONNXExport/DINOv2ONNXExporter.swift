import DINOv2
import Formats
import TensorStore

/// Writes a DINOv2 or DINOv3 backbone as an ONNX graph built from its config and weights (no
/// tracing):
///
///     pixel_values [N,3,H,W] -> Conv (patch embedding) -> + position table (DINOv2) -> [cls,
///     registers | storage tokens, patches] -> blocks (LayerNormalization, MatMul+Add, Softmax
///     attention with RoPE on the patch rows of q and k for DINOv3, GELU or SwiGLU MLP,
///     LayerScale Mul) -> LayerNormalization -> x_norm_clstoken, x_norm_patchtokens, ...
///
/// The hub tensors are the graph's initializers under their hub names and bytes (Linear weights
/// reach MatMul through a Transpose node, which runtimes fold at load), so importing the file
/// gives back the source weights bit for bit. Everything else the graph needs is named
/// `dinokit::...`; `ExportOptions.dtype` I8 stores the Linear weights quantized instead, as
/// `dinokit::int8/<hub name>` (`Int8Graph.swift`), read back dequantized. A fixed input size bakes
/// DinoKit's own interpolated position grid (DINOv2) or RoPE sin/cos tables (DINOv3); a dynamic
/// one resamples the table in the graph with Resize, matching PyTorch's bicubic (see
/// `positionGridDynamic`), or computes the RoPE tables from the input's shape (see
/// `ropeTablesDynamic`). DINOv3 storage tokens take the registers' output (x_norm_regtokens).
public enum DINOv2ONNXExporter {
    public static let producerName = "DinoKit"

    public struct Summary: Sendable, Encodable {
        public var path: String
        public var externalDataPath: String?
        public var variant: String
        public var config: String
        public var imageSize: String
        public var opset: Int
        public var irVersion: Int
        public var dtype: String
        public var inputs: [String]
        public var outputs: [String]
        public var nodes: Int
        public var initializers: Int
        public var weightBytes: Int
        public var modelBytes: Int
        public var externalDataBytes: Int
        /// Why external data was used when it was not asked for.
        public var note: String?
        /// Tensors of the source that are not part of the backbone (not exported).
        public var ignored: [String]
    }

    /// Exports `store` (DINOv2 or DINOv3 weights in any layout DinoKit reads) to `path`.
    public static func export(store: TensorStore, to path: String, options: ExportOptions) throws -> Summary {
        let built = try build(store: store, options: options)
        let model = built.model
        var external: ExternalDataLayout?
        var note: String?
        let location = (path.split(separator: "/").last.map(String.init) ?? path) + ".data"
        if options.externalData {
            external = ExternalDataLayout(location: location, initializers: model.graph.initializers,
                                          threshold: options.externalDataThreshold)
        } else if try ONNXProtoWriter.packedSize(model, external: nil) >= options.automaticExternalDataLimit {
            external = ExternalDataLayout(location: location, initializers: model.graph.initializers,
                                          threshold: options.externalDataThreshold)
            note = "weights over protobuf's 2 GB limit: stored as external data in \(location)"
        }
        if let external, try ONNXProtoWriter.packedSize(model, external: external) >= ExportOptions.protobufLimit {
            throw ONNXExportError.tooLarge("the graph alone exceeds protobuf's 2 GB limit")
        }
        let size = try ONNXProtoWriter.write(model, to: path, external: external)
        let g = model.graph
        return Summary(
            path: path, externalDataPath: external.map { ONNXProtoWriter.sidePath(modelPath: path, location: $0.location) },
            variant: built.config.variant ?? "custom", config: built.config.description,
            imageSize: options.imageSize.description, opset: model.opset, irVersion: model.irVersion,
            dtype: options.dtype.rawValue,
            inputs: g.inputs.map { "\($0.name) float32[\($0.dims.map(\.description).joined(separator: ","))]" },
            outputs: g.outputs.map { "\($0.name) float32[\($0.dims.map(\.description).joined(separator: ","))]" },
            nodes: g.nodes.count, initializers: g.initializers.count,
            weightBytes: g.initializers.reduce(0) { $0 + $1.tensor.byteCount }, modelBytes: size,
            externalDataBytes: external?.totalBytes ?? 0, note: note, ignored: built.ignored)
    }

    /// The model `export` writes, without writing it.
    public static func build(store: TensorStore, options: ExportOptions) throws -> (model: ONNXModel, config: Config, ignored: [String]) {
        let hub: TensorStore
        do {
            hub = try KeyLayouts.canonicalize(store).store
        } catch {
            throw ONNXExportError.unsupportedModel("the weights are not a DINOv2 or DINOv3 backbone in a layout DinoKit knows (\(error))")
        }
        var config = try Config.detect(hubStore: hub, numHeads: options.numHeads)
        let v3 = config.family == .dinov3
        // DINOv3 has no position table to interpolate: the option does not apply.
        if !v3 { config.interpolation = .semantics(options.interpolation, registerTokens: config.registerTokens) }
        try validate(options, config: config)
        let exporter = try GraphExporter(hub: hub, config: config, options: options)
        let graph = try exporter.build()
        let outputs = graph.outputs.map(\.name).joined(separator: ",")
        var metadata: [(key: String, value: String)] = [
            (ONNXModelReader.MetadataKey.version, options.producerVersion),
            (ONNXModelReader.MetadataKey.variant, config.variant ?? "custom"),
            ("dinokit.family", config.family.rawValue),
        ]
        if !v3 {
            metadata += [(ONNXModelReader.MetadataKey.interpolation, options.interpolation.rawValue),
                         ("dinokit.interpolation_detail", config.interpolation.description)]
        }
        metadata += [
            (ONNXModelReader.MetadataKey.numHeads, String(config.numHeads)),
            ("dinokit.embed_dim", String(config.embedDim)),
            ("dinokit.depth", String(config.depth)),
            ("dinokit.patch_size", String(config.patchSize)),
            ("dinokit.register_tokens", String(config.registerTokens)),
            ("dinokit.image_size", options.imageSize.description),
            ("dinokit.weights_dtype", options.dtype.rawValue),
            ("dinokit.outputs", outputs),
        ]
        if options.dtype == .i8 { metadata.append(("dinokit.quantization", ExportOptions.int8Scheme)) }
        let doc = "\(v3 ? "DINOv3" : "DINOv2") backbone \(config.variant ?? "custom") exported by DinoKit from its config and weights. "
            + "Input pixel_values float32 [N,3,H,W] (normalized, H and W multiples of \(config.patchSize)); outputs \(outputs)."
        let model = ONNXModel(irVersion: ExportOptions.irVersion(opset: options.opset), opset: options.opset,
                              producerName: producerName, producerVersion: options.producerVersion, docString: doc,
                              metadata: metadata, graph: graph)
        return (model, config, exporter.ignored)
    }

    static func validate(_ o: ExportOptions, config: Config) throws {
        guard ExportOptions.supportedOpsets.contains(o.opset) else {
            throw ONNXExportError.invalidOption("opset \(o.opset) is not supported; use \(ExportOptions.supportedOpsets.lowerBound)...\(ExportOptions.supportedOpsets.upperBound) (LayerNormalization needs 17)")
        }
        guard ExportOptions.supportedDTypes.contains(o.dtype) else {
            throw ONNXExportError.invalidOption("dtype \(o.dtype) is not supported; use \(ExportOptions.supportedDTypes.map(\.rawValue).joined(separator: ", "))")
        }
        if let outputs = o.outputs {
            guard !outputs.isEmpty else { throw ONNXExportError.invalidOption("no outputs requested") }
            guard Set(outputs).count == outputs.count else { throw ONNXExportError.invalidOption("an output is requested twice") }
            if outputs.contains(.reg) && config.registerTokens == 0 {
                let tokens = config.family == .dinov3 ? "storage" : "register"
                throw ONNXExportError.invalidOption("x_norm_regtokens requested but the model has no \(tokens) tokens")
            }
        }
        guard o.externalDataThreshold >= 0 else { throw ONNXExportError.invalidOption("negative external-data threshold") }
        switch o.imageSize {
        case let .fixed(h, w):
            guard h > 0, w > 0, h % config.patchSize == 0, w % config.patchSize == 0 else {
                throw ONNXExportError.invalidSize("\(h)x\(w) is not a positive multiple of the patch size \(config.patchSize) in both sides")
            }
        case .dynamic:
            if config.family == .dinov2 && config.interpolation.antialias && o.opset < 18 {
                throw ONNXExportError.invalidOption("a dynamic-size export of a model with antialiased position interpolation (register models) needs opset 18 or later (Resize antialias); use --opset 18")
            }
        }
    }
}
