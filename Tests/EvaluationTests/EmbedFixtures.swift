import DINOv2
import Evaluation
import Formats
import Foundation
import Images
import Kernels
import TensorStore
import TestSupport
import XCTest

/// Fixtures/embed/ (Scripts/fixtures/embed_features.py): the official model's features of the
/// committed photographs, and the model that made them.
enum EmbedFixtures {
    /// The photos in the order the script ran them.
    static let photos = [
        "china_320x272_q90_420.jpg",
        "flower_264x330_q75_444_progressive.jpg",
        "china_257x171_q60_422.jpg",
        "flower_200x150_gray.jpg",
        "china_160x120_cmyk.jpg",
        "flower_20x30_tiny.jpg",
    ].map { fixturePath("images/" + $0) }

    static func model(threads: Int = 2, precision: Precision = .f32) throws -> Model {
        try Model(store: loadWeights(path: fixturePath("embed/model.safetensors")), precision: precision, parallelism: Parallelism(threads: threads))
    }

    /// The script's presets: `eval` (256 -> 224) and `resize112`.
    static let presets: [String: Preprocess] = ["eval": .eval, "resize112": .resize(112)]

    static func expected(_ name: String) throws -> Tensor {
        try NPY.read(path: fixturePath("embed/\(name).npy"))
    }

    static func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).reduce(0) { Swift.max($0, abs($1.0 - $1.1)) }
    }
}
