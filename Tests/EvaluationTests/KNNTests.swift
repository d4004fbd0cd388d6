import Datasets
import Evaluation
import Kernels
import XCTest

/// DINOv2's weighted k-NN against the NumPy reference in Fixtures/probe: predictions equal,
/// query by query, for every k.
final class KNNTests: XCTestCase {
    func testPredictionsEqualTheNumPyReference() throws {
        for set in try ProbeManifest.load().sets {
            let reference = try set.intMatrix("knn")
            let knn = KNN(ks: set.knn.ks, temperature: set.knn.temperature, chunk: 37)
            let result = try knn.predict(train: try set.features("train"), labels: try set.labels("train_labels"),
                                         queries: try set.features("test"), parallelism: Parallelism(threads: 2))
            XCTAssertEqual(result.ks, set.knn.ks)
            for (j, k) in set.knn.ks.enumerated() {
                let expected = reference[j]
                let mismatches = zip(result.predictions[j], expected).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset)
                XCTAssertEqual(mismatches, [], "\(set.name) k=\(k): queries \(mismatches.prefix(10)) differ")
            }
            let accuracies = result.accuracies(labels: try set.labels("test_labels"))
            for (a, b) in zip(accuracies, set.knn.test_accuracy) { XCTAssertEqual(a, b, accuracy: 1e-12, set.name) }
        }
    }

    func testChunkingAndThreadsDoNotChangePredictions() throws {
        let set = try ProbeManifest.load().sets.first { $0.name == "photos" }!
        let train = try set.features("train"), labels = try set.labels("train_labels"), test = try set.features("test")
        let a = try KNN(ks: [10, 20], chunk: 1).predict(train: train, labels: labels, queries: test, parallelism: .serial)
        let b = try KNN(ks: [10, 20], chunk: 500).predict(train: train, labels: labels, queries: test, parallelism: Parallelism(threads: 2))
        XCTAssertEqual(a, b)
    }

    func testTiesGoToTheLowerTrainingIndexAndTheLowerClass() throws {
        // Two training points identical to the query with different labels: with k = 1 the
        // lower index wins; with k = 2 the class scores tie and the lower class wins.
        let train = try FeatureMatrix(rows: 3, columns: 2, values: [1, 0, 1, 0, 0, 1])
        let query = try FeatureMatrix(rows: 1, columns: 2, values: [2, 0])
        let r = try KNN(ks: [1, 2], temperature: 0.07).predict(train: train, labels: [9, 4, 4], queries: query)
        XCTAssertEqual(r.predictions, [[9], [4]])
    }

    func testKLargerThanTheTrainingSetIsClamped() throws {
        let train = try FeatureMatrix(rows: 2, columns: 2, values: [1, 0, 0, 1])
        let query = try FeatureMatrix(rows: 1, columns: 2, values: [1, 0.1])
        let r = try KNN(ks: [200]).predict(train: train, labels: [0, 1], queries: query)
        XCTAssertEqual(r.predictions, [[0]])
    }

    func testRejectsMismatchedInput() throws {
        let train = try FeatureMatrix(rows: 2, columns: 2, values: [1, 0, 0, 1])
        let query = try FeatureMatrix(rows: 1, columns: 3, values: [1, 0, 0])
        XCTAssertThrowsError(try KNN().predict(train: train, labels: [0, 1], queries: query))
        XCTAssertThrowsError(try KNN().predict(train: train, labels: [0], queries: train))
        XCTAssertThrowsError(try KNN(ks: [0]).predict(train: train, labels: [0, 1], queries: train))
        XCTAssertThrowsError(try KNN(temperature: 0).predict(train: train, labels: [0, 1], queries: train))
    }
}

