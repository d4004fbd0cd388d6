/// What `dinokit probe --json` prints (the schema): accuracies as fractions in 0…1,
/// only the classifiers that ran, the class names and the confusion matrix (rows actual,
/// columns predicted) of the logistic regression — or of k-NN when it ran alone — and, when a
/// model extracted the features, the precision it ran at.
public struct ProbeResult: Codable, Sendable, Equatable {
    public struct LogReg: Codable, Sendable, Equatable {
        public var trainAccuracy: Double
        public var testAccuracy: Double
        /// sklearn's scaling: mean log-loss + ½·‖W‖² / (C·n).
        public var objective: Double
        public var iterations: Int
        public var fitSeconds: Double

        public init(trainAccuracy: Double, testAccuracy: Double, objective: Double, iterations: Int, fitSeconds: Double) {
            self.trainAccuracy = trainAccuracy
            self.testAccuracy = testAccuracy
            self.objective = objective
            self.iterations = iterations
            self.fitSeconds = fitSeconds
        }

        enum CodingKeys: String, CodingKey {
            case trainAccuracy = "train_accuracy", testAccuracy = "test_accuracy", objective, iterations,
                 fitSeconds = "fit_seconds"
        }
    }

    public struct KNNAccuracy: Codable, Sendable, Equatable {
        public var k: Int
        public var testAccuracy: Double

        public init(k: Int, testAccuracy: Double) {
            self.k = k
            self.testAccuracy = testAccuracy
        }

        enum CodingKeys: String, CodingKey { case k, testAccuracy = "test_accuracy" }
    }

    public var logreg: LogReg?
    public var knn: [KNNAccuracy]?
    public var classes: [String]
    public var confusion: [[Int]]
    /// `Precision.rawValue` of the model that extracted the features; nil when they were read
    /// from `.npy` files.
    public var precision: String?

    public init(logreg: LogReg?, knn: [KNNAccuracy]?, classes: [String], confusion: [[Int]], precision: String? = nil) {
        self.logreg = logreg
        self.knn = knn
        self.classes = classes
        self.confusion = confusion
        self.precision = precision
    }
}
