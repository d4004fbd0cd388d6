import Datasets
import Evaluation
import Kernels
import XCTest

/// DinoKit's logistic regression against sklearn's `LogisticRegression` on the probe fixtures:
/// same objective (sklearn's scaling) within 1e-4 relative, accuracies within 0.3 points,
/// coefficients close, predictions mostly equal.
final class LogisticRegressionTests: XCTestCase {
    func testMatchesSklearnOnEveryFixtureSet() throws {
        let manifest = try ProbeManifest.load()
        XCTAssertEqual(manifest.sets.map(\.name).sorted(), ["binary", "overlap", "photos", "separable"])
        for set in manifest.sets {
            let train = try set.features("train"), test = try set.features("test")
            let trainLabels = try set.labels("train_labels"), testLabels = try set.labels("test_labels")
            let model = try LogisticRegression(C: set.C, maxIterations: set.max_iter)
                .fit(train, labels: trainLabels, parallelism: Parallelism(threads: 2))
            XCTAssertEqual(model.classes, set.classes, set.name)

            let relative = abs(model.objective - set.sklearn.objective) / abs(set.sklearn.objective)
            XCTAssertLessThan(relative, 1e-4, "\(set.name): objective \(model.objective) vs sklearn \(set.sklearn.objective)")
            // sklearn converged (gradient test) on every set; so must DinoKit.
            XCTAssertTrue(model.converged, "\(set.name): \(model.stop)")

            let trainAccuracy = try model.accuracy(train, labels: trainLabels)
            let testAccuracy = try model.accuracy(test, labels: testLabels)
            XCTAssertLessThanOrEqual(abs(trainAccuracy - set.sklearn.train_accuracy), 0.003, "\(set.name) train accuracy")
            XCTAssertLessThanOrEqual(abs(testAccuracy - set.sklearn.test_accuracy), 0.003, "\(set.name) test accuracy")

            // Same optimum: coefficients agree to the accuracy the gradient tolerance allows.
            let coef = try set.floats("coef"), intercept = try set.floats("intercept")
            XCTAssertEqual(model.coefficients.count, coef.count, set.name)
            let scale = coef.map { abs(Double($0)) }.max()!
            let coefError = zip(model.coefficients, coef).map { abs($0 - Double($1)) }.max()!
            let interceptError = zip(model.intercepts, intercept).map { abs($0 - Double($1)) }.max()!
            XCTAssertLessThan(coefError / scale, 2e-2, "\(set.name): coefficients differ by \(coefError) (scale \(scale))")
            XCTAssertLessThan(interceptError / Swift.max(scale, 1), 2e-2, "\(set.name): intercepts differ by \(interceptError)")

            let predicted = try model.predict(test)
            let sklearnPredicted = try set.labels("pred_test")
            let agree = zip(predicted, sklearnPredicted).filter { $0 == $1 }.count
            XCTAssertGreaterThanOrEqual(Double(agree) / Double(predicted.count), 0.98, "\(set.name): predictions agree on \(agree)/\(predicted.count)")
            print("logreg \(set.name): iterations \(model.iterations) (sklearn \(set.sklearn.n_iter)), objective rel. diff \(relative), "
                + "train acc \(trainAccuracy) (\(set.sklearn.train_accuracy)), test acc \(testAccuracy) (\(set.sklearn.test_accuracy)), "
                + "coef max diff \(coefError), predictions equal \(agree)/\(predicted.count)")
        }
    }

    /// The objective's definition and scaling, independent of the optimiser: at sklearn's own
    /// (float32) coefficients DinoKit's objective equals sklearn's objective recomputed in
    /// float64 from them (`objective_float64`), to float32 logit rounding.
    func testObjectiveAtSklearnsCoefficientsIsSklearnsObjective() throws {
        for set in try ProbeManifest.load().sets {
            let f = try LogisticRegression(C: set.C).objective(
                try set.features("train"), labels: try set.labels("train_labels"),
                coefficients: try set.floats("coef").map(Double.init), intercepts: try set.floats("intercept").map(Double.init))
            XCTAssertEqual(f, set.sklearn.objective_float64, accuracy: 1e-6 * set.sklearn.objective_float64, set.name)
            // And sklearn's optimum is what scipy reported, to the same precision.
            XCTAssertEqual(f, set.sklearn.objective, accuracy: 1e-5 * set.sklearn.objective, set.name)
        }
    }

    func testZeroIterationsScoresTheStartingPoint() throws {
        // At W = 0, b = 0 every class has probability 1/K: objective log K.
        let set = try ProbeManifest.load().sets.first { $0.name == "overlap" }!
        let model = try LogisticRegression(maxIterations: 0).fit(try set.features("train"), labels: try set.labels("train_labels"))
        XCTAssertEqual(model.objective, log(5), accuracy: 1e-12)
        XCTAssertEqual(model.iterations, 0)
    }

    func testMaxIterationsStopsEarlyAndSaysSo() throws {
        let set = try ProbeManifest.load().sets.first { $0.name == "overlap" }!
        let model = try LogisticRegression(maxIterations: 5).fit(try set.features("train"), labels: try set.labels("train_labels"))
        XCTAssertEqual(model.iterations, 5)
        XCTAssertEqual(model.stop, .maxIterations)
        XCTAssertFalse(model.converged)
    }

    /// Threads change float32 summation order, so L-BFGS stops at a slightly different point
    /// once the gradient test passes; both stay within the tolerance of sklearn's objective.
    func testThreadCountChangesTheResultOnlyWithinTolerance() throws {
        let set = try ProbeManifest.load().sets.first { $0.name == "photos" }!
        let x = try set.features("train"), y = try set.labels("train_labels")
        let one = try LogisticRegression(maxIterations: set.max_iter).fit(x, labels: y, parallelism: .serial)
        let two = try LogisticRegression(maxIterations: set.max_iter).fit(x, labels: y, parallelism: Parallelism(threads: 2))
        XCTAssertEqual(one.objective, set.sklearn.objective, accuracy: 1e-4 * set.sklearn.objective)
        XCTAssertEqual(two.objective, set.sklearn.objective, accuracy: 1e-4 * set.sklearn.objective)
    }

    func testRejectsUnusableInput() throws {
        let x = try FeatureMatrix(rows: 3, columns: 2, values: [1, 2, 3, 4, 5, 6])
        XCTAssertThrowsError(try LogisticRegression().fit(x, labels: [1, 1, 1])) { error in
            XCTAssertTrue("\(error)".contains("at least 2 classes"), "\(error)")
        }
        XCTAssertThrowsError(try LogisticRegression().fit(x, labels: [0, 1]))
        XCTAssertThrowsError(try LogisticRegression(C: 0).fit(x, labels: [0, 1, 0]))
        let model = try LogisticRegression().fit(x, labels: [0, 1, 0])
        XCTAssertThrowsError(try model.predict(try FeatureMatrix(rows: 1, columns: 3, values: [1, 2, 3])))
    }
}
