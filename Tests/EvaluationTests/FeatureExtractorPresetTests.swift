import Datasets
import Evaluation
import Foundation
import Images
import TestSupport
import XCTest

/// The probe's `FeatureExtractor` gives the official model's cls features for both presets. The
/// eval preset once resized and cropped twice (256 → 224, then 224 → 256 → 224): exact resizes
/// hid it, the eval preset's shorter-side resize did not.
final class FeatureExtractorPresetTests: XCTestCase {
    private struct Photos: LabeledImages {
        let paths: [String]
        var classes: [String] { ["photo"] }
        var labels: [Int] { paths.map { _ in 0 } }
        var source: String { "Fixtures/images" }
        func image(at index: Int) throws -> RGBImage { try ImageDecoder.decode(path: paths[index]) }
        func fingerprint() throws -> String { paths.joined(separator: "\n") }
    }

    func testClsFeaturesMatchTheOfficialModelForEveryPreset() throws {
        let model = try EmbedFixtures.model()
        for (name, preprocess) in EmbedFixtures.presets.sorted(by: { $0.key < $1.key }) {
            let extractor = FeatureExtractor(model: model, preprocess: preprocess, batchSize: 4, decodeThreads: 2)
            let got = try extractor.extract(Photos(paths: EmbedFixtures.photos))
            let expected = try EmbedFixtures.expected("\(name).cls")
            XCTAssertEqual([got.rows, got.columns], expected.shape.dims, name)
            XCTAssertLessThanOrEqual(EmbedFixtures.maxAbsDifference(got.values, try expected.floats()), 1e-4, name)
        }
    }
}
