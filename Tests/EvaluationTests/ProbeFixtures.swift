import Datasets
import Evaluation
import Formats
import Foundation
import Kernels
import TensorStore
import TestSupport

/// Fixtures/probe/manifest.json (Scripts/fixtures/probe.py): feature sets with what sklearn and
/// a NumPy k-NN made of them.
struct ProbeManifest: Decodable {
    struct Set: Decodable {
        struct Sklearn: Decodable {
            var objective: Double
            var objective_float64: Double
            var n_iter: Int
            var message: String
            var train_accuracy: Double
            var test_accuracy: Double
        }
        struct KNNReference: Decodable {
            var ks: [Int]
            var temperature: Double
            var test_accuracy: [Double]
        }
        var name: String
        var files: [String: String]
        var max_iter: Int
        var C: Double
        var classes: [Int]
        var sklearn: Sklearn
        var knn: KNNReference

        func features(_ key: String) throws -> FeatureMatrix {
            try FeatureMatrix.load(npy: fixturePath("probe/" + files[key]!))
        }
        func labels(_ key: String) throws -> [Int] {
            try LabelFile.load(npy: fixturePath("probe/" + files[key]!))
        }
        /// A 2-D integer array, row by row.
        func intMatrix(_ key: String) throws -> [[Int]] {
            let t = try NPY.read(path: fixturePath("probe/" + files[key]!))
            let rows = t.shape[0], columns = t.shape[1]
            let flat = try LabelFile.labels(try Tensor(storage: t.contiguous().storage, dtype: t.dtype, shape: [rows * columns]), name: key)
            return (0..<rows).map { Array(flat[($0 * columns)..<(($0 + 1) * columns)]) }
        }
        func floats(_ key: String) throws -> [Float] {
            try NPY.read(path: fixturePath("probe/" + files[key]!)).floats()
        }
    }
    var sets: [Set]

    static func load() throws -> ProbeManifest {
        let data = try Data(contentsOf: URL(fileURLWithPath: fixturePath("probe/manifest.json")))
        return try JSONDecoder().decode(ProbeManifest.self, from: data)
    }
}

/// Fixtures/cifar/reference.json: the official pipeline on the CIFAR-format fixture.
struct CIFARReference: Decodable {
    struct LogReg: Decodable {
        var train_accuracy: Double
        var test_accuracy: Double
        var objective: Double
        var iterations: Int
    }
    struct KNNEntry: Decodable {
        var k: Int
        var test_accuracy: Double
    }
    var num_heads: Int
    var classes: [String]
    var train_count: Int
    var test_count: Int
    var train_labels: [Int]
    var test_labels: [Int]
    var logreg: LogReg
    var knn: [KNNEntry]
    var knn_predictions: [[Int]]
    var logreg_test_predictions: [Int]
    /// hashlib's SHA-256 of each file of the binary layout.
    var sha256: [String: String]
    /// torchvision's HWC arrays at a few places: [index, row, column, [r, g, b]].
    var train_pixels: [PixelCheck]
    var test_pixels: [PixelCheck]

    struct PixelCheck: Decodable {
        var index: Int, row: Int, column: Int, rgb: [Int]
        init(from decoder: Decoder) throws {
            var c = try decoder.unkeyedContainer()
            index = try c.decode(Int.self)
            row = try c.decode(Int.self)
            column = try c.decode(Int.self)
            rgb = try c.decode([Int].self)
        }
    }

    static func load() throws -> CIFARReference {
        let data = try Data(contentsOf: URL(fileURLWithPath: fixturePath("cifar/reference.json")))
        return try JSONDecoder().decode(CIFARReference.self, from: data)
    }
}

/// The probe as Scripts/fixtures/probe.py ran the official pipeline on the CIFAR-format fixture:
/// the tiny model (2 heads), k-NN with k = 10 and 20; quiet, two threads.
func tinyModelProbe(_ source: ProbeExperiment.Source, cache: String? = nil, precision: Precision = .f32) -> ProbeExperiment {
    var e = ProbeExperiment(source: source)
    e.weights = fixturePath("golden/tiny-plain/model.safetensors")
    e.numHeads = 2
    e.precision = precision
    e.ks = [10, 20]
    e.batchSize = 16
    e.cacheDirectory = cache
    e.showProgress = false
    e.parallelism = Parallelism(threads: 2)
    return e
}
