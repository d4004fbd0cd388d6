import ArgumentParser
import DINOv2
import Foundation
import Formats
import Kernels
import ONNXExport
import TensorStore

struct ExportONNX: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-onnx",
        abstract: "Write DINOv2 or DINOv3 weights (any format) as an ONNX model for inference runtimes (not a training run: see 'export').",
        discussion: """
        Input pixel_values float32 [N,3,H,W] (normalized as for the model); outputs x_norm_clstoken [N,D], \
        x_norm_patchtokens [N,h*w,D], x_norm_regtokens [N,R,D] for register models (DINOv3: the storage tokens), \
        and x_prenorm on request. The batch is always dynamic. --size fixes H x W and bakes DinoKit's \
        interpolated position table (DINOv3: its RoPE sin/cos tables); --dynamic-size accepts any H, W \
        (multiples of the patch size) and resamples the table (DINOv3: computes the RoPE tables) in the graph \
        as the official code does. Initializers keep the hub names, so `dinokit convert model.onnx \
        weights.safetensors` gives the weights back bit for bit (in the stored dtype; an int8 export gives \
        the dequantized float32 weights its graph computes with).
        """)

    @OptionGroup var weightsOption: WeightsOption

    @Option(help: "Output .onnx path (external data goes beside it as <name>.data).")
    var out: String

    @Option(help: "Input size: 224 (square) or HxW such as 168x252, multiples of the patch size (default 224).")
    var size: String?

    @Flag(name: .customLong("dynamic-size"), help: "Accept any input height and width (position table resampled, or RoPE tables computed, in the graph).")
    var dynamicSize = false

    @Option(help: "ONNX opset, 17 to 25 (register models with --dynamic-size need 18+).")
    var opset: Int = ExportOptions.defaultOpset

    @Option(help: "Comma-separated outputs: cls, patch, reg, prenorm (default: cls,patch, plus reg for register models).")
    var outputs: String?

    @Option(help: "Weight storage: f32, f16 or bf16 (half the file; the graph still computes in float32), or int8 (Linear layers quantized as --precision int8: per-channel int8 weights, per-token int8 inputs, MatMulInteger).")
    var dtype: String = "f32"

    @Flag(name: .customLong("external-data"), help: "Store the weights in <out>.data beside the model (automatic above protobuf's 2 GB limit).")
    var externalData = false

    @OptionGroup var heads: HeadsOption

    @Option(help: "Position-embedding interpolation to reproduce: official or hf (DINOv2; DINOv3 has no position table).")
    var interpolation: String = InterpolationSemantics.official.rawValue

    @OptionGroup var jsonOption: JSONOption

    func run() throws {
        let start = monotonicSeconds()
        var options = ExportOptions()
        options.producerVersion = DinoKitVersion.string
        options.opset = opset
        options.externalData = externalData
        options.numHeads = heads.numHeads
        if dynamicSize {
            guard size == nil else { throw ValidationError("--size and --dynamic-size exclude each other") }
            options.imageSize = .dynamic
        } else if let size {
            guard let parsed = ExportOptions.ImageSize(parsing: size) else {
                throw ValidationError("--size must be N or HxW (e.g. 224 or 168x252), not '\(size)'")
            }
            options.imageSize = parsed
        }
        if let outputs {
            options.outputs = try outputs.split(separator: ",").map { word in
                let w = word.trimmingCharacters(in: .whitespaces).lowercased()
                guard let o = ExportOptions.Output(rawValue: w) else {
                    throw ValidationError("unknown output '\(w)'; use cls, patch, reg or prenorm")
                }
                return o
            }
        }
        let dtypes: [String: DType] = ["f32": .f32, "f16": .f16, "bf16": .bf16, "int8": .i8]
        guard let dt = dtypes[dtype.lowercased()] else {
            throw ValidationError("--dtype must be f32, f16, bf16 or int8, not '\(dtype)'")
        }
        options.dtype = dt
        guard let semantics = InterpolationSemantics(rawValue: interpolation.lowercased()) else {
            throw ValidationError("--interpolation must be official or hf, not '\(interpolation)'")
        }
        options.interpolation = semantics

        try checkOutputs(files: [out] + (externalData ? [out + ".data"] : []), inputs: [weightsOption.weights])
        let (_, store) = try Checkpoint.read(path: weightsOption.weights)
        let summary = try DINOv2ONNXExporter.export(store: store, to: out, options: options)
        let seconds = monotonicSeconds() - start
        if jsonOption.json {
            try printJSON(Report(summary: summary, seconds: seconds))
            return
        }
        let weights = dt == .i8 ? ExportOptions.int8Scheme + " Linear layers" : "\(summary.dtype) weights"
        print("\(weightsOption.weights) -> \(out): \(summary.variant), opset \(summary.opset), input \(summary.imageSize), \(weights)")
        for i in summary.inputs { print("  input  \(i)") }
        for o in summary.outputs { print("  output \(o)") }
        var sizes = "\(summary.nodes) nodes, \(summary.initializers) initializers, \(humanBytes(summary.modelBytes))"
        if let data = summary.externalDataPath { sizes += " + \(humanBytes(summary.externalDataBytes)) in \(data)" }
        print("  \(sizes) in \(String(format: "%.3f", seconds)) s")
        if let note = summary.note { print("  note: \(note)") }
        if !summary.ignored.isEmpty { print("  not exported (not backbone weights): \(summary.ignored.joined(separator: ", "))") }
    }

    struct Report: Encodable {
        var summary: DINOv2ONNXExporter.Summary
        var seconds: Double

        func encode(to encoder: Encoder) throws {
            try summary.encode(to: encoder)
            var c = encoder.container(keyedBy: Key.self)
            try c.encode(seconds, forKey: Key(stringValue: "seconds"))
        }

        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }
    }
}
