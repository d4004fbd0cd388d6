/// Scoring shared by every classifier over features (k-NN here, the logistic probe in Evaluation).
public enum Classification {
    /// Fraction of equal entries (0 for empty input).
    public static func accuracy(predicted: [Int], actual: [Int]) -> Double {
        guard !actual.isEmpty else { return 0 }
        return Double(zip(predicted, actual).filter { $0 == $1 }.count) / Double(actual.count)
    }
}
