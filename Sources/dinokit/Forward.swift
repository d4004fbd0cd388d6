import ArgumentParser
import DINOv2
import Foundation
import Formats
import Kernels
import TensorStore

extension InterpolationSemantics: ExpressibleByArgument {}

struct Forward: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the DINOv2 or DINOv3 backbone on an input tensor (.npy, float32 (B,3,H,W)) and write its outputs as .npz.",
        discussion: """
        The .npz holds x_norm_clstoken, x_norm_regtokens (DINOv3: x_storage_tokens), x_norm_patchtokens, \
        x_prenorm and forward (named as the official forward_features keys and as golden sets name them), plus \
        intermediate.<i>.patch / intermediate.<i>.cls for each block given to --intermediate \
        (get_intermediate_layers(x, n=[i], return_class_token=True, norm=True)).
        """)

    @OptionGroup var weightsOption: WeightsOption

    @Option(help: "Input .npy, float32 (B, 3, H, W), H and W multiples of the patch size.")
    var input: String

    @Option(help: "Output .npz.")
    var out: String

    @Option(help: "Optional mask .npy, bool (B, h*w): true where the mask token replaces a patch.")
    var masks: String?

    @Option(help: "Block indices for intermediate outputs, e.g. 8,9,10,11.")
    var intermediate: String?

    @Option(help: "Position-embedding interpolation: official (the hub models) or hf (transformers' semantics).")
    var interpolation: InterpolationSemantics = .official

    @OptionGroup var modelOptions: ModelOptions

    @OptionGroup var jsonOption: JSONOption

    struct Summary: Encodable {
        var out: String
        var variant: String?
        var arrays: [String: [Int]]
        /// How the weights were held: "in-memory", or "streamed" (block by block, --max-weight-memory).
        var weights: String
        /// Streamed: the most weight bytes (linear weights packed, the rest float32) held at once.
        var peakWeightBytes: Int?
        var seconds: Double
    }

    func run() throws {
        let start = monotonicSeconds()
        try checkOutputs(files: [out], inputs: [weightsOption.weights, input, masks])
        let blocks = try parseIndexList(intermediate, option: "--intermediate")
        var model = try modelOptions.model(weights: weightsOption.weights)
        model.interpolation = .semantics(interpolation, registerTokens: model.config.registerTokens)
        let x = try NPY.read(path: input)
        let m = try masks.map { try NPY.read(path: $0) }
        let features = try model.forwardFeatures(x, masks: m)
        var result = TensorStore()
        try result.insert(features.clsToken, named: "x_norm_clstoken")
        try result.insert(features.regTokens, named: model.config.family == .dinov3 ? "x_storage_tokens" : "x_norm_regtokens")
        try result.insert(features.patchTokens, named: "x_norm_patchtokens")
        try result.insert(features.prenorm, named: "x_prenorm")
        try result.insert(features.clsToken, named: "forward")
        if !blocks.isEmpty {
            for o in try model.intermediateLayers(x, n: .indices(blocks), returnClassToken: true, norm: true) {
                try result.insert(o.patchTokens, named: "intermediate.\(o.blockIndex).patch")
                if let cls = o.classToken { try result.insert(cls, named: "intermediate.\(o.blockIndex).cls") }
            }
        }
        try NPZ.write(result, to: out)
        let summary = Summary(out: out, variant: model.config.variant,
                              arrays: Dictionary(uniqueKeysWithValues: result.tensors.map { ($0.key, $0.value.shape.dims) }),
                              weights: model.loading == .streamed ? "streamed" : "in-memory",
                              peakWeightBytes: model.peakStreamedWeightBytes, seconds: monotonicSeconds() - start)
        if jsonOption.json {
            try printJSON(summary)
        } else {
            print("\(model.config)")
            print(weightsLine(model))
            for (name, t) in result.tensors { print("  \(name)  \(t.shape)") }
            print("wrote \(out) in \(String(format: "%.3f", summary.seconds)) s")
        }
    }
}

/// "8,9,10,11" -> [8, 9, 10, 11]; nil or empty -> [].
func parseIndexList(_ text: String?, option: String) throws -> [Int] {
    guard let text, !text.isEmpty else { return [] }
    return try text.split(separator: ",").map {
        guard let i = Int($0.trimmingCharacters(in: .whitespaces)), i >= 0 else {
            throw ValidationError("\(option): '\($0)' is not a block index")
        }
        return i
    }
}
