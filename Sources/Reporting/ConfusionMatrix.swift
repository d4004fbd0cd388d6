import Datasets
/// Counts of (actual, predicted) class pairs: `counts[actual][predicted]`, classes in label order.
public struct ConfusionMatrix: Sendable, Equatable, Codable {
    public let classes: [String]
    public let counts: [[Int]]

    /// `actual` and `predicted` are class indices into `classes`.
    public init(classes: [String], actual: [Int], predicted: [Int]) throws {
        guard actual.count == predicted.count else {
            throw EvaluationError.badFeatures(what: "predictions", detail: "\(predicted.count) predictions for \(actual.count) labels")
        }
        var counts = [[Int]](repeating: [Int](repeating: 0, count: classes.count), count: classes.count)
        for (a, p) in zip(actual, predicted) {
            guard a >= 0, a < classes.count, p >= 0, p < classes.count else {
                throw EvaluationError.badFeatures(what: "predictions", detail: "class index \(a) or \(p) outside 0..<\(classes.count)")
            }
            counts[a][p] += 1
        }
        self.classes = classes
        self.counts = counts
    }

    /// Correct / total per actual class; nil for a class with no samples.
    public var perClassAccuracy: [Double?] {
        counts.enumerated().map { i, row in
            let total = row.reduce(0, +)
            return total == 0 ? nil : Double(row[i]) / Double(total)
        }
    }

    public var accuracy: Double {
        let total = counts.flatMap { $0 }.reduce(0, +)
        return total == 0 ? 0 : Double(counts.indices.map { counts[$0][$0] }.reduce(0, +)) / Double(total)
    }
}
