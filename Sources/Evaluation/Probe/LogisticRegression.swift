import Datasets
import Foundation
import Kernels

/// scikit-learn's `LogisticRegression()` with its defaults — L2 penalty, `C = 1`, intercept
/// fitted and not penalised, `solver="lbfgs"`, `tol = 1e-4`, no feature scaling — fitted to the
/// same objective, in the same scaling, with the same optimiser and stopping rule (see
/// `LogisticLoss` and `LBFGS`). Labels may be any integers; `classes` are the sorted distinct
/// labels of the training set, as sklearn's `classes_`. Three or more classes fit the
/// multinomial (softmax) model, two the binomial one with a single weight row, as sklearn does.
///
/// ```
/// let model = try LogisticRegression(maxIterations: 1000).fit(train, labels: trainLabels)
/// let predicted = model.predict(test)
/// ```
public struct LogisticRegression: Sendable {
    /// Inverse regularisation strength (sklearn's `C`).
    public var C: Double
    /// sklearn's `max_iter` (its default is 100; the CIFAR-10 experiment uses 1000).
    public var maxIterations: Int
    /// sklearn's `tol`: L-BFGS stops when the scaled gradient's largest entry is at most this.
    public var tol: Double
    public var fitIntercept: Bool

    public init(C: Double = 1, maxIterations: Int = 100, tol: Double = 1e-4, fitIntercept: Bool = true) {
        self.C = C
        self.maxIterations = maxIterations
        self.tol = tol
        self.fitIntercept = fitIntercept
    }

    /// The objective this fit minimises (sklearn's scaling) at given parameters: `coefficients`
    /// row-major (rows × D; rows = 1 for two classes, the class count otherwise) and
    /// `intercepts` (rows). With sklearn's `coef_` and `intercept_` it gives sklearn's objective.
    public func objective(_ x: FeatureMatrix, labels: [Int], coefficients: [Double], intercepts: [Double],
                          parallelism: Parallelism = .fromEnvironment) throws -> Double {
        let (_, loss) = try problem(x, labels: labels, parallelism: parallelism)
        guard coefficients.count == loss.outputs * x.columns, intercepts.count == loss.outputs else {
            throw EvaluationError.badFeatures(what: "coefficients", detail: "\(coefficients.count) coefficients and \(intercepts.count) intercepts; expected \(loss.outputs) x \(x.columns) and \(loss.outputs)")
        }
        var g = [Double](repeating: 0, count: loss.parameterCount)
        return loss.evaluate(coefficients + (fitIntercept ? intercepts : []), &g)
    }

    /// Sorted classes and the loss for (x, labels), after checking both.
    private func problem(_ x: FeatureMatrix, labels: [Int], parallelism: Parallelism) throws -> ([Int], LogisticLoss) {
        guard labels.count == x.rows else {
            throw EvaluationError.badFeatures(what: "training labels", detail: "\(labels.count) labels for \(x.rows) feature rows")
        }
        guard x.rows > 0, x.columns > 0 else {
            throw EvaluationError.badFeatures(what: "training features", detail: "shape (\(x.rows), \(x.columns)) is empty")
        }
        guard C > 0, C.isFinite else { throw EvaluationError.invalidArgument(what: "C", detail: "\(C) must be positive and finite") }
        let classes = Array(Set(labels)).sorted()
        guard classes.count >= 2 else {
            throw EvaluationError.badFeatures(what: "training labels", detail: "logistic regression needs samples of at least 2 classes; all are \(classes.first.map(String.init) ?? "-")")
        }
        let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
        let binomial = classes.count == 2
        let loss = LogisticLoss(x: x, targets: labels.map { Int32(index[$0]!) }, outputs: binomial ? 1 : classes.count,
                                binomial: binomial, alpha: 1 / (C * Double(x.rows)), fitIntercept: fitIntercept,
                                parallelism: parallelism)
        return (classes, loss)
    }

    /// Fits the model. `progress` is called after every L-BFGS iteration.
    public func fit(_ x: FeatureMatrix, labels: [Int], parallelism: Parallelism = .fromEnvironment,
                    progress: ((LBFGS.Progress) -> Void)? = nil) throws -> LogisticRegressionModel {
        guard tol >= 0 else { throw EvaluationError.invalidArgument(what: "tol", detail: "\(tol) must not be negative") }
        guard maxIterations >= 0 else { throw EvaluationError.invalidArgument(what: "max iterations", detail: "\(maxIterations) must not be negative") }
        let (classes, loss) = try problem(x, labels: labels, parallelism: parallelism)
        let outputs = loss.outputs

        let start = DispatchTime.now().uptimeNanoseconds
        // sklearn's scipy call: maxiter, maxls 50, gtol = tol, ftol = 64·eps (factr 64), m 10.
        let optimizer = LBFGS(memory: 10, maxIterations: maxIterations, maxEvaluations: 15000, gtol: tol,
                              ftolFactor: 64, maxLineSearch: 50)
        let x0 = [Double](repeating: 0, count: loss.parameterCount)
        let result: LBFGS.Result
        if maxIterations == 0 {
            var g = x0
            let f = loss.evaluate(x0, &g)
            result = LBFGS.Result(x: x0, f: f, gradient: g, iterations: 0, evaluations: 1, stop: .maxIterations)
        } else {
            result = optimizer.minimize(x0, objective: { loss.evaluate($0, &$1) }, progress: progress)
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9

        let d = x.columns
        return LogisticRegressionModel(
            classes: classes, features: d,
            coefficients: Array(result.x[0..<(outputs * d)]),
            intercepts: fitIntercept ? Array(result.x[(outputs * d)...]) : [Double](repeating: 0, count: outputs),
            objective: result.f, iterations: result.iterations, evaluations: result.evaluations,
            stop: result.stop, fitSeconds: seconds)
    }
}

/// A fitted `LogisticRegression`: sklearn's `coef_`, `intercept_`, `classes_`, `n_iter_`, plus
/// the final objective (sklearn's scaling, `opt_res.fun`) and how the optimiser stopped.
public struct LogisticRegressionModel: Sendable {
    /// The sorted distinct training labels.
    public let classes: [Int]
    public let features: Int
    /// Row-major (rows × features), rows = 1 for two classes, the class count otherwise.
    public let coefficients: [Double]
    public let intercepts: [Double]
    public let objective: Double
    public let iterations: Int
    public let evaluations: Int
    public let stop: LBFGS.Stop
    public let fitSeconds: Double

    public var rows: Int { intercepts.count }
    public var converged: Bool { stop.converged }

    /// sklearn's `decision_function`: X·Wᵀ + b, (N × rows), in float32 as for float32 features.
    public func decisionFunction(_ x: FeatureMatrix, parallelism: Parallelism = .fromEnvironment) throws -> [Float] {
        guard x.columns == features else {
            throw EvaluationError.badFeatures(what: "features", detail: "width \(x.columns), but the model was fitted on width \(features)")
        }
        let k = rows, d = features
        let w = coefficients.map { Float($0) }, b = intercepts.map { Float($0) }
        var out = [Float](repeating: 0, count: x.rows * k)
        out.withUnsafeMutableBufferPointer { o in
            x.values.withUnsafeBufferPointer { xs in
                w.withUnsafeBufferPointer { wp in
                    linearForward(out: o.baseAddress!, inp: xs.baseAddress!, weight: wp.baseAddress!, bias: nil,
                                  rows: x.rows, inFeatures: d, outFeatures: k, parallelism: parallelism)
                }
            }
            // sklearn adds the intercept after the product: `X @ coef_.T + intercept_`.
            for r in 0..<x.rows { for c in 0..<k { o[r * k + c] += b[c] } }
        }
        return out
    }

    /// Predicted labels: the class with the largest score (the first on ties, as NumPy's argmax);
    /// with two classes the second class when the score is positive.
    public func predict(_ x: FeatureMatrix, parallelism: Parallelism = .fromEnvironment) throws -> [Int] {
        let scores = try decisionFunction(x, parallelism: parallelism)
        let k = rows
        return (0..<x.rows).map { r in
            if k == 1 { return classes[scores[r] > 0 ? 1 : 0] }
            var best = 0
            for c in 1..<k where scores[r * k + c] > scores[r * k + best] { best = c }
            return classes[best]
        }
    }

    /// Fraction of rows whose prediction equals the label.
    public func accuracy(_ x: FeatureMatrix, labels: [Int], parallelism: Parallelism = .fromEnvironment) throws -> Double {
        guard labels.count == x.rows else {
            throw EvaluationError.badFeatures(what: "labels", detail: "\(labels.count) labels for \(x.rows) feature rows")
        }
        let predicted = try predict(x, parallelism: parallelism)
        return Classification.accuracy(predicted: predicted, actual: labels)
    }
}
