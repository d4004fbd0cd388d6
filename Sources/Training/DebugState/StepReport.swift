import Foundation
import TensorStore

/// `dinokit train step --json`: how a replay of a debug state compares with PyTorch's numbers,
/// and whether it passes (issue 8):
/// - every loss term of every step within 1e-4 relative;
/// - every step-0 gradient tensor within 1e-3 · max|expected| + 1e-7, element-wise;
/// - every final tensor within 1e-6 + 0.05·lr·N of expected for at least 99.99 % of its elements
///   and within 2·lr·N for all (N steps, lr the config's); elements whose expected step-0
///   gradient is below 1e-6 · max|g| of their tensor (e.g. the key part of `attn.qkv.bias`, zero
///   in exact arithmetic) only need the 2·lr·N bound — AdamW turns float noise there into moves
///   of about lr. A teacher tensor takes the exemptions of the student tensor of the same name.
public struct StepReport: Codable, Sendable {
    public struct Step: Codable, Sendable {
        public var total: Double
        public var totalExpected: Double
        /// The largest relative error over the step's five terms.
        public var maxRelErr: Double
        enum CodingKeys: String, CodingKey { case total, totalExpected = "total_expected", maxRelErr = "max_rel_err" }
    }
    public struct Grads: Codable, Sendable {
        /// max over tensors of max|ours − expected| / max|expected|.
        public var maxRelErr: Double
        /// The tensor where it occurs.
        public var worst: String
        enum CodingKeys: String, CodingKey { case maxRelErr = "max_rel_err", worst }
    }
    public struct Final: Codable, Sendable {
        public var maxAbsErr: Double
        public var worst: String
        enum CodingKeys: String, CodingKey { case maxAbsErr = "max_abs_err", worst }
    }

    public var pass: Bool
    public var steps: [Step]
    public var grads: Grads
    public var final: Final

    public static let lossTolerance = 1e-4
    public static let gradientTolerance = 1e-3, gradientFloor = 1e-7
    public static let finalFraction = 0.9999

    /// One tensor's comparison, for tables and failure messages.
    public struct TensorComparison: Sendable {
        public var name: String
        public var maxAbsErr: Double
        /// For final tensors: the largest error over the elements the tight bound applies to.
        public var maxCheckedErr: Double
        public var maxExpected: Double
        public var pass: Bool
        public var detail: String
    }

    /// One loss term of one step.
    public struct LossComparison: Sendable {
        public var step: Int
        public var term: String
        public var dinokit: Double
        public var pytorch: Double
        public var relativeError: Double
    }

    /// Failed checks, one line each (empty when `pass`).
    public var failures: [String] = []
    public var lossComparisons: [LossComparison] = []
    public var gradientComparisons: [TensorComparison] = []
    public var finalComparisons: [TensorComparison] = []

    enum CodingKeys: String, CodingKey { case pass, steps, grads, final }

    /// Compares a replay's losses, step-0 gradients and final state with a debug state's.
    public static func compare(losses: [LossTerms], gradients: TensorStore, final: TensorStore,
                               expected state: DebugState) -> StepReport {
        var failures: [String] = []
        var steps: [Step] = []
        var lossComparisons: [LossComparison] = []
        for (t, e) in state.expected.enumerated() {
            guard t < losses.count else {
                failures.append("step \(t): not run")
                continue
            }
            var worst = 0.0
            for ((name, ours), (_, theirs)) in zip(losses[t].named, e.named) {
                let rel = abs(ours - theirs) / Swift.max(abs(theirs), .leastNormalMagnitude)
                worst = Swift.max(worst, rel.isNaN ? .infinity : rel)
                lossComparisons.append(LossComparison(step: t, term: name, dinokit: ours, pytorch: theirs, relativeError: rel))
                if !(rel <= lossTolerance) {
                    failures.append("step \(t) \(name): \(ours) vs \(theirs) (relative error \(rel) > \(lossTolerance))")
                }
            }
            steps.append(Step(total: losses[t].total, totalExpected: e.total, maxRelErr: worst))
        }

        // Step-0 gradients.
        var gradComparisons: [TensorComparison] = []
        var gradWorst = (0.0, "")
        for name in state.expectedGradients.names {
            guard let e = state.expectedGradients[name] else { continue }
            guard let o = gradients[name], o.shape == e.shape else {
                failures.append("gradient \(name): \(gradients[name] == nil ? "not computed" : "shape differs")")
                continue
            }
            let ev = e.floats(), ov = o.floats()
            let maxE = ev.reduce(0.0) { Swift.max($0, Double(abs($1))) }
            var maxErr = 0.0
            for i in 0..<ev.count { maxErr = Swift.max(maxErr, Double(abs(ov[i] - ev[i])).nanAsInfinity) }
            let bound = gradientTolerance * maxE + gradientFloor
            let ok = maxErr <= bound
            let rel = maxErr / Swift.max(maxE, .leastNormalMagnitude)
            if rel > gradWorst.0 || gradWorst.1.isEmpty { gradWorst = (rel, name) }
            gradComparisons.append(TensorComparison(name: name, maxAbsErr: maxErr, maxCheckedErr: maxErr, maxExpected: maxE, pass: ok,
                                                    detail: String(format: "rel %.2e", rel)))
            if !ok { failures.append("gradient \(name): max error \(maxErr) > \(bound) (max |expected| \(maxE))") }
        }
        for name in gradients.names where state.expectedGradients[name] == nil {
            failures.append("gradient \(name): not in \(DebugState.gradientsFile)")
        }

        // Final state.
        let n = Double(state.config.steps), lr = state.config.optim.lr
        let tight = 1e-6 + 0.05 * lr * n, loose = 2 * lr * n
        var finalComparisons: [TensorComparison] = []
        var finalWorst = (0.0, "")
        for name in state.expectedFinal.names {
            guard let e = state.expectedFinal[name] else { continue }
            guard let o = final[name], o.shape == e.shape else {
                failures.append("final \(name): \(final[name] == nil ? "missing" : "shape differs")")
                continue
            }
            let ev = e.floats(), ov = o.floats()
            // Elements with a (near-)zero expected gradient move by float noise: loose bound only.
            var exempt = [Bool](repeating: false, count: ev.count)
            let studentName = name.hasPrefix("teacher.") ? "student." + name.dropFirst("teacher.".count) : name
            if let g = state.expectedGradients[studentName], g.elementCount == ev.count {
                let gv = g.floats()
                let gmax = gv.reduce(Float(0)) { Swift.max($0, abs($1)) }
                for i in 0..<gv.count where abs(gv[i]) < 1e-6 * gmax { exempt[i] = true }
            }
            var maxErr = 0.0, maxChecked = 0.0, outsideTight = 0, outsideLoose = 0
            for i in 0..<ev.count {
                let err = Double(abs(ov[i] - ev[i])).nanAsInfinity
                maxErr = Swift.max(maxErr, err)
                if err > loose { outsideLoose += 1 }
                if !exempt[i] {
                    maxChecked = Swift.max(maxChecked, err)
                    if err > tight { outsideTight += 1 }
                }
            }
            let allowed = Int((Double(ev.count) * (1 - finalFraction)).rounded(.down))
            let ok = outsideLoose == 0 && outsideTight <= allowed
            if maxErr > finalWorst.0 || finalWorst.1.isEmpty { finalWorst = (maxErr, name) }
            finalComparisons.append(TensorComparison(
                name: name, maxAbsErr: maxErr, maxCheckedErr: maxChecked, maxExpected: ev.reduce(0.0) { Swift.max($0, Double(abs($1))) }, pass: ok,
                detail: "\(outsideTight) > \(String(format: "%.1e", tight)), \(outsideLoose) > \(String(format: "%.1e", loose))"))
            if !ok {
                failures.append("final \(name): max error \(maxErr); \(outsideTight) of \(ev.count) elements beyond \(tight) (\(allowed) allowed), \(outsideLoose) beyond \(loose)")
            }
        }
        for name in final.names where state.expectedFinal[name] == nil {
            failures.append("final \(name): not in \(DebugState.finalFile)")
        }

        var report = StepReport(pass: failures.isEmpty, steps: steps,
                                grads: Grads(maxRelErr: gradWorst.0, worst: gradWorst.1),
                                final: Final(maxAbsErr: finalWorst.0, worst: finalWorst.1))
        report.failures = failures
        report.gradientComparisons = gradComparisons
        report.finalComparisons = finalComparisons
        report.lossComparisons = lossComparisons
        return report
    }
}

extension Double {
    var nanAsInfinity: Double { isNaN ? .infinity : self }
}
