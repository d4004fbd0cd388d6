import Foundation
import Images
import Reporting
import TensorStore

/// `probe --report DIR`: `report.json` (the `--json` result plus per-class accuracy, the
/// optimiser's stop reason, the settings and every misclassified test image), `confusion.png`
/// and, when the features came from images, `misclassified.png` (a gallery of the first
/// misclassified test images with actual and predicted labels). Files are written atomically.
public enum ProbeReport {
    public struct Settings: Codable, Sendable {
        public var C: Double
        public var maxIterations: Int
        public var ks: [Int]
        public var temperature: Double
        public var inputs: [String: String]

        public init(C: Double, maxIterations: Int, ks: [Int], temperature: Double, inputs: [String: String]) {
            self.C = C
            self.maxIterations = maxIterations
            self.ks = ks
            self.temperature = temperature
            self.inputs = inputs
        }

        enum CodingKeys: String, CodingKey {
            case C, maxIterations = "max_iter", ks = "k", temperature, inputs
        }
    }

    struct Document: Encodable {
        struct Misclassified: Encodable {
            var index: Int
            var actual: String
            var predicted: String
        }
        struct LogRegDetails: Encodable {
            var converged: Bool
            var stop: String
            var evaluations: Int
        }
        var result: ProbeResult
        var confusionSource: String
        var perClassAccuracy: [String: Double?]
        var logregOptimizer: LogRegDetails?
        var train: Int
        var test: Int
        var featureDimension: Int
        var settings: Settings
        var misclassified: [Misclassified]
        var pictures: [String]

        enum CodingKeys: String, CodingKey {
            case result, confusionSource = "confusion_source", perClassAccuracy = "per_class_accuracy",
                 logregOptimizer = "logreg_optimizer", train, test, featureDimension = "feature_dimension",
                 settings, misclassified, pictures
        }
    }

    /// The files a report folder receives.
    public static let fileNames = ["report.json", "confusion.png", "misclassified.png"]

    /// Writes the report; returns the paths written.
    @discardableResult
    public static func write(_ outcome: ProbeExperiment.Outcome, settings: Settings, to directory: String,
                             galleryLimit: Int = 48) throws -> [String] {
        // A folder output: created when missing, its parent must exist (OutputPath's rule).
        try OutputPath.createFolder(directory, writing: fileNames)
        let classes = outcome.classes
        let wrong = zip(outcome.testLabels, outcome.predictions).enumerated().filter { $0.element.0 != $0.element.1 }
        var written: [String] = []

        let accuracyText = String(format: "%.2f%%", 100 * outcome.confusion.accuracy)
        let confusionPicture = try ReportPictures.confusionMatrix(
            outcome.confusion, title: "Confusion matrix, \(outcome.confusionSource): test accuracy \(accuracyText)")
        try PNGEncoder.write(confusionPicture, to: directory + "/confusion.png")
        written.append(directory + "/confusion.png")

        if let images = outcome.testImages {
            let shown = wrong.prefix(galleryLimit)
            let items = try shown.map { entry in
                ReportPictures.GalleryItem(image: try images.image(at: entry.offset),
                                           actual: classes[entry.element.0], predicted: classes[entry.element.1])
            }
            let title = "Misclassified test images (\(outcome.confusionSource)): \(wrong.count) of \(outcome.testCount)"
                + (wrong.count > shown.count ? ", first \(shown.count) shown" : "")
            try PNGEncoder.write(try ReportPictures.gallery(items, title: title), to: directory + "/misclassified.png")
            written.append(directory + "/misclassified.png")
        }

        var perClass: [String: Double?] = [:]
        for (name, acc) in zip(classes, outcome.confusion.perClassAccuracy) { perClass[name] = acc }
        let document = Document(
            result: outcome.result, confusionSource: outcome.confusionSource, perClassAccuracy: perClass,
            logregOptimizer: outcome.logreg.map { .init(converged: $0.converged, stop: $0.stop.rawValue, evaluations: $0.evaluations) },
            train: outcome.trainCount, test: outcome.testCount, featureDimension: outcome.featureDimension,
            settings: settings,
            misclassified: wrong.map { .init(index: $0.offset, actual: classes[$0.element.0], predicted: classes[$0.element.1]) },
            pictures: written.map { ($0 as NSString).lastPathComponent })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let json = try encoder.encode(document)
        try AtomicFileWriter.write(to: directory + "/report.json") { try $0.write([UInt8](json) + [0x0A]) }
        written.insert(directory + "/report.json", at: 0)
        return written
    }
}
