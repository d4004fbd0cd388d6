/// Limited-memory BFGS for smooth unconstrained problems, run the way scipy's L-BFGS-B runs
/// when no bounds are given — which is what sklearn's `LogisticRegression(solver="lbfgs")`
/// calls (`scipy.optimize.minimize(method="L-BFGS-B", jac=True, options={maxiter, maxls: 50,
/// gtol: tol, ftol: 64·eps})`, scipy's default memory m = 10 and maxfun = 15000).
///
/// Without bounds L-BFGS-B's generalized Cauchy point and subspace minimisation reduce to the
/// quasi-Newton step d = −H·g with the memory's inverse Hessian (initial scaling sᵀy / yᵀy, the
/// `theta` of its compact form), computed here with the two-loop recursion; the rest follows
/// L-BFGS-B 3.0 (`mainlb`, `lnsrlb`) step by step:
/// - first step length min(1/‖d‖, 1e10) on the first iteration, 1 afterwards;
/// - Moré–Thuente line search with ftol 1e-3, gtol 0.9, xtol 0.1, at most `maxLineSearch`
///   evaluations; a line-search warning accepts the last trial point;
/// - a failed line search restores the iterate and, when the memory is not empty, drops the
///   memory and retries from steepest descent; with an empty memory it stops (abnormal);
/// - a correction pair is stored only when sᵀy > ε·(−gᵀd·stp) (ε = machine epsilon);
/// - stopping: the iteration count reaching `maxIterations` or evaluations beyond
///   `maxEvaluations` (scipy's driver checks these first), then ‖g‖∞ ≤ `gtol` (the projected
///   gradient without bounds), then (f_old − f) ≤ `ftolFactor`·ε·max(|f_old|, |f|, 1).
public struct LBFGS: Sendable {
    public var memory = 10
    public var maxIterations = 15000
    public var maxEvaluations = 15000
    /// Tolerance on the infinity norm of the gradient (scipy's `gtol` / `pgtol`).
    public var gtol = 1e-5
    /// Relative-reduction tolerance in units of machine epsilon (scipy's `factr` = ftol / eps).
    public var ftolFactor = 1e7
    /// Line-search evaluations per iteration (scipy's `maxls`).
    public var maxLineSearch = 20

    public init(memory: Int = 10, maxIterations: Int = 15000, maxEvaluations: Int = 15000, gtol: Double = 1e-5,
                ftolFactor: Double = 1e7, maxLineSearch: Int = 20) {
        self.memory = memory
        self.maxIterations = maxIterations
        self.maxEvaluations = maxEvaluations
        self.gtol = gtol
        self.ftolFactor = ftolFactor
        self.maxLineSearch = maxLineSearch
    }

    public enum Stop: String, Sendable, Codable {
        /// ‖g‖∞ ≤ gtol.
        case gradient = "CONVERGENCE: NORM_OF_PROJECTED_GRADIENT_<=_PGTOL"
        /// The relative reduction of f fell below ftol.
        case relativeReduction = "CONVERGENCE: REL_REDUCTION_OF_F_<=_FACTR*EPSMCH"
        case maxIterations = "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT"
        case maxEvaluations = "STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT"
        /// The line search failed with an empty memory.
        case lineSearchFailed = "ABNORMAL_TERMINATION_IN_LNSRCH"
        /// The objective returned a non-finite value at the start.
        case nonFinite = "ABNORMAL: NON-FINITE OBJECTIVE"

        /// sklearn warns (ConvergenceWarning) unless scipy reported convergence.
        public var converged: Bool { self == .gradient || self == .relativeReduction }
    }

    public struct Result: Sendable {
        public var x: [Double]
        public var f: Double
        public var gradient: [Double]
        public var iterations: Int
        public var evaluations: Int
        public var stop: Stop
    }

    /// What the caller sees after each iteration (for progress bars).
    public struct Progress: Sendable {
        public var iteration: Int
        public var f: Double
        public var gradientNorm: Double
    }

    /// Minimises `objective`, which returns f(x) and writes ∇f(x) into its second argument.
    public func minimize(_ x0: [Double], objective: ([Double], inout [Double]) -> Double,
                         progress: ((Progress) -> Void)? = nil) -> Result {
        let n = x0.count
        let eps = Double.ulpOfOne
        var x = x0
        var g = [Double](repeating: 0, count: n)
        var f = objective(x, &g)
        var evaluations = 1
        guard f.isFinite else {
            return Result(x: x, f: f, gradient: g, iterations: 0, evaluations: evaluations, stop: .nonFinite)
        }
        if LBFGS.infNorm(g) <= gtol {
            return Result(x: x, f: f, gradient: g, iterations: 0, evaluations: evaluations, stop: .gradient)
        }

        var history = CorrectionHistory(capacity: memory, dimension: n)
        var iterations = 0
        var d = [Double](repeating: 0, count: n)
        var xOld = x, gOld = g
        while true {
            // Search direction: −H·g (−g with an empty memory).
            history.applyInverseHessian(to: g, into: &d)
            for i in 0..<n { d[i] = -d[i] }

            xOld = x
            gOld = g
            let fOld = f
            let dnorm = LBFGS.dot(d, d).squareRoot()
            var step = iterations == 0 ? Swift.min(1 / dnorm, 1e10) : 1
            let gdOld = LBFGS.dot(g, d)

            var failed = !(gdOld < 0)
            if !failed {
                var search = MoreThuenteLineSearch(f0: f, g0: gdOld, step: step)
                var trials = 0
                var status = search.startStatus()
                while case .evaluate = status {
                    if trials >= maxLineSearch { failed = true; break }
                    step = search.step
                    for i in 0..<n { x[i] = xOld[i] + step * d[i] }
                    f = objective(x, &g)
                    evaluations += 1
                    trials += 1
                    if !f.isFinite {
                        // Treat like an overshoot the interpolation cannot use: fail this search.
                        failed = true
                        break
                    }
                    status = search.next(f: f, g: LBFGS.dot(g, d))
                }
                if case .error = status { failed = true }
            }

            if failed {
                x = xOld
                g = gOld
                f = fOld
                if history.isEmpty {
                    return Result(x: x, f: f, gradient: g, iterations: iterations, evaluations: evaluations,
                                  stop: .lineSearchFailed)
                }
                history.removeAll()
                continue
            }

            iterations += 1
            let gnorm = LBFGS.infNorm(g)
            progress?(Progress(iteration: iterations, f: f, gradientNorm: gnorm))
            if iterations >= maxIterations {
                return Result(x: x, f: f, gradient: g, iterations: iterations, evaluations: evaluations, stop: .maxIterations)
            }
            if evaluations > maxEvaluations {
                return Result(x: x, f: f, gradient: g, iterations: iterations, evaluations: evaluations, stop: .maxEvaluations)
            }
            if gnorm <= gtol {
                return Result(x: x, f: f, gradient: g, iterations: iterations, evaluations: evaluations, stop: .gradient)
            }
            if fOld - f <= ftolFactor * eps * Swift.max(abs(fOld), abs(f), 1) {
                return Result(x: x, f: f, gradient: g, iterations: iterations, evaluations: evaluations, stop: .relativeReduction)
            }

            // s = stp·d, y = g − g_old; keep the pair only with enough curvature.
            var s = [Double](repeating: 0, count: n), y = [Double](repeating: 0, count: n)
            for i in 0..<n {
                s[i] = step * d[i]
                y[i] = g[i] - gOld[i]
            }
            let sy = (LBFGS.dot(g, d) - gdOld) * step
            if sy > eps * (-gdOld * step) {
                history.append(s: s, y: y, sy: sy, yy: LBFGS.dot(y, y))
            }
        }
    }

    static func dot(_ a: [Double], _ b: [Double]) -> Double {
        var s = 0.0
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                for i in 0..<a.count { s += a[i] * b[i] }
            }
        }
        return s
    }

    static func infNorm(_ a: [Double]) -> Double {
        a.reduce(0) { Swift.max($0, abs($1)) }
    }
}

/// The last `capacity` correction pairs (s, y), oldest first.
struct CorrectionHistory {
    let capacity: Int
    let dimension: Int
    private var s: [[Double]] = []
    private var y: [[Double]] = []
    private var rho: [Double] = []
    private var theta = 1.0 // yᵀy / sᵀy of the newest pair: B0 = theta·I, H0 = I / theta

    init(capacity: Int, dimension: Int) {
        self.capacity = Swift.max(1, capacity)
        self.dimension = dimension
    }

    var isEmpty: Bool { s.isEmpty }

    mutating func removeAll() {
        s.removeAll()
        y.removeAll()
        rho.removeAll()
        theta = 1
    }

    mutating func append(s newS: [Double], y newY: [Double], sy: Double, yy: Double) {
        if s.count == capacity {
            s.removeFirst()
            y.removeFirst()
            rho.removeFirst()
        }
        s.append(newS)
        y.append(newY)
        rho.append(1 / sy)
        theta = yy / sy
    }

    /// out = H·g by the two-loop recursion (out = g with no pairs).
    func applyInverseHessian(to g: [Double], into out: inout [Double]) {
        out = g
        let m = s.count
        guard m > 0 else { return }
        var alpha = [Double](repeating: 0, count: m)
        for i in stride(from: m - 1, through: 0, by: -1) {
            let a = rho[i] * LBFGS.dot(s[i], out)
            alpha[i] = a
            let yi = y[i]
            for j in 0..<dimension { out[j] -= a * yi[j] }
        }
        let scale = 1 / theta
        for j in 0..<dimension { out[j] *= scale }
        for i in 0..<m {
            let b = rho[i] * LBFGS.dot(y[i], out)
            let si = s[i], c = alpha[i] - b
            for j in 0..<dimension { out[j] += c * si[j] }
        }
    }
}
