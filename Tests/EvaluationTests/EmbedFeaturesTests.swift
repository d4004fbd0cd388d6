import Datasets
import DINOv2
import Evaluation
import Formats
import Foundation
import Images
import TensorStore
import TestSupport
import XCTest

/// `dinokit embed`'s features on real photographs equal the official model's on torchvision's
/// tensors (max |difference| <= 1e-4), for every output kind and both presets.
final class EmbedFeaturesTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws { directory = makeTemporaryDirectory("embed-features") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    func testEveryOutputKindAndPresetMatchesTheOfficialModel() throws {
        let model = try EmbedFixtures.model()
        for (presetName, preprocess) in EmbedFixtures.presets.sorted(by: { $0.key < $1.key }) {
            for kind in EmbedOutputKind.allCases {
                let embedder = Embedder(model: model, preprocess: preprocess, output: kind, batchSize: 4, decodeThreads: 2)
                let out = directory + "/\(presetName).\(kind.rawValue).npy"
                let paths = EmbedFixtures.photos
                let run = try embedder.run(paths: paths, out: out, key: embedder.key(paths: paths, weightsID: "fixture"))
                XCTAssertTrue(run.completed)
                XCTAssertEqual(run.keptIndices, Array(paths.indices))
                let got = try NPY.read(path: out)
                let expected = try EmbedFixtures.expected("\(presetName).\(kind.rawValue)")
                XCTAssertEqual(got.dtype, .f32)
                XCTAssertEqual(got.shape, expected.shape, "\(presetName) \(kind)")
                let diff = EmbedFixtures.maxAbsDifference(got.floats(), expected.floats())
                XCTAssertLessThanOrEqual(diff, 1e-4, "\(presetName) \(kind)")
                XCTAssertFalse(FileManager.default.fileExists(atPath: Embedder.partialPath(out)))
                XCTAssertFalse(FileManager.default.fileExists(atPath: Embedder.progressPath(out)))
            }
        }
    }

    func testLinearEvalLayoutIsClassTokensThenPatchMean() throws {
        // intermediate4's last two blocks of D are cls+avgpool: the same final cls and patch mean.
        let d = 16
        let four = try EmbedFixtures.expected("eval.intermediate4").floats()
        let two = try EmbedFixtures.expected("eval.cls+avgpool").floats()
        let cls = try EmbedFixtures.expected("eval.cls").floats()
        for b in 0..<EmbedFixtures.photos.count {
            XCTAssertEqual(Array(four[(b * 5 * d + 3 * d)..<((b + 1) * 5 * d)]), Array(two[(b * 2 * d)..<((b + 1) * 2 * d)]))
            XCTAssertEqual(Array(two[(b * 2 * d)..<(b * 2 * d + d)]), Array(cls[(b * d)..<((b + 1) * d)]))
        }
    }
}
