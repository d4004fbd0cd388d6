import ArgumentParser
import DINOv2
import Evaluation
import Foundation
import Images
import Kernels

struct Attention: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attention",
        abstract: "Last-block attention of the cls token on the patches, one heat map per head.",
        discussion: """
        The image is resized (bicubic) so its shorter side is about --size, both sides multiples of \
        the patch size, normalised with ImageNet's statistics. The maps are the softmax \
        probabilities of the last block's attention (as the official Attention computes them) in the \
        cls token's row, restricted to the patches; each map is scaled to its own maximum (shown in \
        its label) and coloured dark to bright, next to the image and the mean over heads.
        """)

    @OptionGroup var weightsOption: WeightsOption

    @Argument(help: "Image (JPEG, PNG).")
    var image: String

    @Option(help: "Output PNG.")
    var out: String

    @Option(help: "Shorter side of the model input in pixels.")
    var size: Int = 448

    @OptionGroup var modelOptions: ModelOptions

    @OptionGroup var jsonOption: JSONOption

    struct Summary: Encodable {
        var out: String
        var grid: [Int]
        var heads: Int
        var maxProbability: [Float]
        var seconds: Double
    }

    func run() throws {
        let start = monotonicSeconds()
        guard size > 0 else { throw ValidationError("--size must be positive") }
        try checkOutputs(files: [out], inputs: [weightsOption.weights, image])
        let model = try pictureModel(weights: weightsOption.weights, options: modelOptions)
        let p = model.config.patchSize
        let (input, x) = try pictureInput(path: image, size: size, patch: p)
        let attention = try model.lastBlockAttention(x)
        let heads = attention.clsToPatches(image: 0)
        let name = weightsLabel(weightsOption.weights)
        let picture = try FeaturePictures.attention(image: input, heads: heads, rows: attention.patchRows,
                                                    cols: attention.patchCols, patch: p,
                                                    title: "cls attention, last block  \(name)")
        try PNGEncoder.write(picture, to: out)
        let summary = Summary(out: out, grid: [attention.patchRows, attention.patchCols], heads: heads.count,
                              maxProbability: heads.map { $0.max() ?? 0 }, seconds: monotonicSeconds() - start)
        if jsonOption.json {
            try printJSON(summary)
        } else {
            print("\(image): \(attention.patchRows)x\(attention.patchCols) patches, \(heads.count) heads")
            print("wrote \(out) (\(picture.width)x\(picture.height))")
        }
    }
}
