import Datasets
import Evaluation
import Foundation
import Images
import Reporting
import TestSupport
import XCTest

/// Report files: PNGs that decode to what was drawn, report.json with the documented keys, the
/// --json schema, confusion counts, progress lines.
final class ReportTests: XCTestCase {
    func testPNGEncoderRoundTripsThroughTheDecoder() throws {
        var state: UInt32 = 12345
        let pixels = (0..<(37 * 23 * 3)).map { _ -> UInt8 in
            state = state &* 1_664_525 &+ 1_013_904_223
            return UInt8(state >> 24)
        }
        let image = try RGBImage(width: 37, height: 23, pixels: pixels)
        let bytes = try PNGEncoder.encode(image)
        XCTAssertEqual(Array(bytes.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        XCTAssertEqual(try ImageDecoder.decode(bytes, file: "encoded.png"), image)
        XCTAssertThrowsError(try PNGEncoder.encode(try RGBImage(width: 0, height: 0, pixels: [])))
    }

    func testConfusionMatrixCountsAndAccuracies() throws {
        let m = try ConfusionMatrix(classes: ["a", "b", "c"], actual: [0, 0, 1, 1, 1, 2], predicted: [0, 1, 1, 1, 0, 2])
        XCTAssertEqual(m.counts, [[1, 1, 0], [1, 2, 0], [0, 0, 1]])
        XCTAssertEqual(m.accuracy, 4.0 / 6.0, accuracy: 1e-15)
        XCTAssertEqual(m.perClassAccuracy.map { $0 ?? -1 }, [0.5, 2.0 / 3.0, 1])
        XCTAssertNil(try ConfusionMatrix(classes: ["a", "b"], actual: [0], predicted: [0]).perClassAccuracy[1])
        XCTAssertThrowsError(try ConfusionMatrix(classes: ["a"], actual: [0], predicted: [1]))
    }

    func testPicturesAndReportJSON() throws {
        let reference = try CIFARReference.load()
        let cifar = try CIFAR10(directory: fixturePath("cifar"))
        let predicted = reference.test_labels.enumerated().map { $0.offset % 7 == 0 ? ($0.element + 1) % 10 : $0.element }
        let confusion = try ConfusionMatrix(classes: cifar.classes, actual: reference.test_labels, predicted: predicted)
        let picture = try ReportPictures.confusionMatrix(confusion, title: "test")
        XCTAssertGreaterThan(picture.width, 10 * 44)
        // A diagonal cell of a class with all its images right is the full blue.
        let gallery = try ReportPictures.gallery([.init(image: try cifar.test.image(at: 0), actual: "a", predicted: "b")], title: "t")
        // The 32x32 image is enlarged 4x, pixel for pixel: the thumbnail's corner is image pixel (0, 0).
        let original = try cifar.test.image(at: 0)
        let x0 = 20, y0 = 20 + 16 + 10 + 16 + 16
        XCTAssertEqual((0..<3).map { gallery[x: x0 + 3, y: y0 + 3, c: $0] }, (0..<3).map { original[x: 0, y: 0, c: $0] })
        XCTAssertEqual((0..<3).map { gallery[x: x0 + 127, y: y0 + 127, c: $0] }, (0..<3).map { original[x: 31, y: 31, c: $0] })

        let result = ProbeResult(logreg: .init(trainAccuracy: 1, testAccuracy: 0.5, objective: 0.25, iterations: 3, fitSeconds: 0.1),
                                 knn: [.init(k: 20, testAccuracy: 0.75)], classes: ["a", "b"], confusion: [[1, 0], [1, 0]])
        let json = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(result)) as! [String: Any]
        XCTAssertEqual(Set(json.keys), ["logreg", "knn", "classes", "confusion"])
        XCTAssertEqual(Set((json["logreg"] as! [String: Any]).keys), ["train_accuracy", "test_accuracy", "objective", "iterations", "fit_seconds"])
        XCTAssertEqual(Set(((json["knn"] as! [Any])[0] as! [String: Any]).keys), ["k", "test_accuracy"])
        let knnOnly = ProbeResult(logreg: nil, knn: [.init(k: 20, testAccuracy: 0.75)], classes: ["a"], confusion: [[1]])
        let knnJSON = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(knnOnly)) as! [String: Any]
        XCTAssertNil(knnJSON["logreg"], "only the classifiers that ran")
    }

    func testProgressLine() {
        XCTAssertEqual(ProgressBar.render(label: "extract train", done: 25, total: 100, elapsed: 5, width: 8),
                       "extract train  [##......]  25/100  5.0/s  ETA 0:15")
        XCTAssertEqual(ProgressBar.render(label: "fit", done: 0, total: 0, elapsed: 0, detail: "f 1", width: 4), "fit  [####]  0/0  f 1")
        XCTAssertFalse(ProgressBar(label: "x", total: 1, enabled: false).enabled)
    }
}
