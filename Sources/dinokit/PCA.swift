import ArgumentParser
import Datasets
import DINOv2
import Evaluation
import Foundation
import Images
import Kernels
import Reporting
import TensorStore

struct PCA: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pca",
        abstract: "The DINOv2 paper's picture: PCA of patch features, foreground by the first component, next components as RGB.",
        discussion: """
        Each image is resized (bicubic) so its shorter side is about --size, both sides multiples of \
        the patch size, normalised with ImageNet's statistics, and run through the model; its patch \
        tokens (x_norm_patchtokens) of all images are pooled. A PCA over all patches gives the first \
        component; it is oriented so the foreground is positive (the side of Otsu's threshold whose \
        patches lie more in the central half of the grid; if both are as central, the smaller side), \
        and patches above the threshold (--threshold auto: Otsu's; or a number on the oriented \
        component) are the foreground. A second PCA over the foreground patches gives three \
        components, min-max scaled over the foreground, shown as red, green and blue; the \
        background is black. Each patch is drawn as a block of patch-size pixels beside the image.
        """)

    @OptionGroup var weightsOption: WeightsOption

    @Argument(help: "Images (JPEG, PNG); their patches share one PCA.")
    var images: [String]

    @Option(help: "Output PNG.")
    var out: String

    @Option(help: "Shorter side of the model input in pixels.")
    var size: Int = 448

    @Option(help: "Foreground threshold on the oriented first component: auto (Otsu) or a number.")
    var threshold: String = "auto"

    @OptionGroup var modelOptions: ModelOptions

    @OptionGroup var jsonOption: JSONOption

    struct Summary: Encodable {
        struct Item: Encodable { var path: String; var grid: [Int]; var foregroundPatches: Int }
        var out: String
        var threshold: Double
        var images: [Item]
        var seconds: Double
    }

    func run() throws {
        let start = monotonicSeconds()
        guard !images.isEmpty else { throw ValidationError("give at least one image") }
        try checkOutputs(files: [out], inputs: [weightsOption.weights] + images)
        guard size > 0 else { throw ValidationError("--size must be positive") }
        let mode: ForegroundThreshold
        if threshold == "auto" { mode = .auto } else if let v = Double(threshold) { mode = .value(v) } else {
            throw ValidationError("--threshold: 'auto' or a number, got '\(threshold)'")
        }
        let model = try pictureModel(weights: weightsOption.weights, options: modelOptions)
        let p = model.config.patchSize
        var items: [PatchFeatures] = []
        for path in images {
            let (input, x) = try pictureInput(path: path, size: size, patch: p)
            let tokens = try model.forwardFeatures(x).patchTokens
            items.append(PatchFeatures(image: input, features: tokens.floats(), rows: input.height / p,
                                       cols: input.width / p, dim: model.config.embedDim))
        }
        let map = try PatchPCAMap(items, threshold: mode)
        let name = weightsLabel(weightsOption.weights)
        let picture = try FeaturePictures.pca(items, map: map, patch: p, title: "PCA of patch features  \(name)")
        try PNGEncoder.write(picture, to: out)
        let summary = Summary(out: out, threshold: map.threshold,
                              images: zip(images, zip(items, map.foreground)).map { path, pair in
                                  .init(path: path, grid: [pair.0.rows, pair.0.cols], foregroundPatches: pair.1.filter { $0 }.count)
                              },
                              seconds: monotonicSeconds() - start)
        if jsonOption.json {
            try printJSON(summary)
        } else {
            for item in summary.images {
                print("\(item.path): \(item.grid[0])x\(item.grid[1]) patches, \(item.foregroundPatches) foreground")
            }
            print(String(format: "threshold %.4g; wrote %@ (%dx%d)", map.threshold, out, picture.width, picture.height))
        }
    }
}

/// The model for a picture command.
func pictureModel(weights: String, options: ModelOptions) throws -> Model {
    try Model(store: loadWeights(path: weights), numHeads: options.numHeads, precision: options.precision,
              parallelism: options.parallelism)
}

/// An image resized for a picture (`FeaturePictures.inputSize`), and its normalised (1, 3, H, W) tensor.
func pictureInput(path: String, size: Int, patch: Int) throws -> (RGBImage, Tensor) {
    let image = try ImageDecoder.decode(path: path)
    let target = FeaturePictures.inputSize(width: image.width, height: image.height, shorterSide: size, patch: patch)
    let preprocess = Preprocess(resizing: .exact(target), crop: nil)
    let input = try preprocess.geometry(image)
    return (input, try preprocess.batch(images: [image]))
}

/// The weights' file name for a picture's title, with its folder when the name says little
/// ("tiny-plain/model.safetensors").
func weightsLabel(_ path: String) -> String {
    let parts = path.split(separator: "/").map(String.init)
    guard let last = parts.last else { return path }
    return last.hasPrefix("model.") && parts.count > 1 ? parts[parts.count - 2] + "/" + last : last
}
