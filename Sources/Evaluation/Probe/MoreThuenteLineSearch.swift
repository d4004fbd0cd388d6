/// The Moré–Thuente line search (MINPACK-2 `dcsrch` / `dcstep`), as L-BFGS-B runs it: find a
/// step satisfying the strong Wolfe conditions
///     f(stp) ≤ f(0) + ftol·stp·f'(0)   and   |f'(stp)| ≤ gtol·|f'(0)|
/// by safeguarded cubic and quadratic interpolation inside an interval of uncertainty.
///
/// Reverse communication, like the Fortran: call `start` with the values at step 0 and the first
/// trial step, evaluate f and f' at `step`, pass them to `next`, and repeat while it says
/// `.evaluate`. The branch structure and constants follow the published algorithm (Moré and
/// Thuente, ACM TOMS 20(3), 1994) so that DinoKit's L-BFGS takes the steps scipy's takes.
struct MoreThuenteLineSearch {
    enum Status: Equatable {
        /// Evaluate f and f' at `step`, then call `next`.
        case evaluate
        /// The strong Wolfe conditions hold at `step`.
        case converged
        /// The search cannot make progress (rounding, interval too small, a bound reached); `step`
        /// is the best point found, as MINPACK-2 hands it back with a WARNING.
        case warning(String)
        /// Invalid input (an ascent direction, a negative step).
        case error(String)
    }

    let ftol: Double, gtol: Double, xtol: Double, stepMin: Double, stepMax: Double
    private(set) var step: Double

    private var bracketed = false
    private var stage = 1
    private var finit = 0.0, ginit = 0.0, gtest = 0.0
    private var width = 0.0, width1 = 0.0
    private var stx = 0.0, fx = 0.0, gx = 0.0
    private var sty = 0.0, fy = 0.0, gy = 0.0
    private var stmin = 0.0, stmax = 0.0

    /// `f0`, `g0`: value and directional derivative at step 0; `step`: the first trial.
    init(f0: Double, g0: Double, step: Double, ftol: Double = 1e-3, gtol: Double = 0.9, xtol: Double = 0.1,
         stepMin: Double = 0, stepMax: Double = 1e10) {
        self.ftol = ftol
        self.gtol = gtol
        self.xtol = xtol
        self.stepMin = stepMin
        self.stepMax = stepMax
        self.step = step
        finit = f0
        ginit = g0
        gtest = ftol * g0
        width = stepMax - stepMin
        width1 = width / 0.5
        stx = 0; fx = f0; gx = g0
        sty = 0; fy = f0; gy = g0
        stmin = 0
        stmax = step + 4 * step
    }

    /// Checks the inputs `init` was given (dcsrch's START branch).
    func startStatus() -> Status {
        if step < stepMin { return .error("STP .LT. STPMIN") }
        if step > stepMax { return .error("STP .GT. STPMAX") }
        if ginit >= 0 { return .error("INITIAL G .GE. ZERO") }
        if ftol < 0 { return .error("FTOL .LT. ZERO") }
        if gtol < 0 { return .error("GTOL .LT. ZERO") }
        if xtol < 0 { return .error("XTOL .LT. ZERO") }
        if stepMin < 0 { return .error("STPMIN .LT. ZERO") }
        if stepMax < stepMin { return .error("STPMAX .LT. STPMIN") }
        return .evaluate
    }

    /// f and f' at the current `step`; returns what to do next (and may move `step`).
    mutating func next(f: Double, g: Double) -> Status {
        let xtrapl = 1.1, xtrapu = 4.0
        let ftest = finit + step * gtest
        if stage == 1 && f <= ftest && g >= 0 { stage = 2 }

        // Tests for warnings, then for convergence (dcsrch's order: the last one set wins).
        var status: Status? = nil
        if bracketed && (step <= stmin || step >= stmax) { status = .warning("ROUNDING ERRORS PREVENT PROGRESS") }
        if bracketed && stmax - stmin <= xtol * stmax { status = .warning("XTOL TEST SATISFIED") }
        if step == stepMax && f <= ftest && g <= gtest { status = .warning("STP = STPMAX") }
        if step == stepMin && (f > ftest || g >= gtest) { status = .warning("STP = STPMIN") }
        if f <= ftest && abs(g) <= gtol * (-ginit) { status = .converged }
        if let status { return status }

        if stage == 1 && f <= fx && f > ftest {
            // A lower function value but no sufficient decrease: work on the modified function
            // psi(stp) = f(stp) - f(0) - ftol·stp·f'(0), whose interval rules are the same.
            let fm = f - step * gtest
            var fxm = fx - stx * gtest, fym = fy - sty * gtest
            let gm = g - gtest
            var gxm = gx - gtest, gym = gy - gtest
            var stp = step
            MoreThuenteLineSearch.cstep(stx: &stx, fx: &fxm, dx: &gxm, sty: &sty, fy: &fym, dy: &gym,
                                        stp: &stp, fp: fm, dp: gm, bracketed: &bracketed, stpmin: stmin, stpmax: stmax)
            step = stp
            fx = fxm + stx * gtest
            fy = fym + sty * gtest
            gx = gxm + gtest
            gy = gym + gtest
        } else {
            var stp = step
            MoreThuenteLineSearch.cstep(stx: &stx, fx: &fx, dx: &gx, sty: &sty, fy: &fy, dy: &gy,
                                        stp: &stp, fp: f, dp: g, bracketed: &bracketed, stpmin: stmin, stpmax: stmax)
            step = stp
        }

        // Force a sufficient decrease in the size of the interval of uncertainty.
        if bracketed {
            if abs(sty - stx) >= 0.66 * width1 { step = stx + 0.5 * (sty - stx) }
            width1 = width
            width = abs(sty - stx)
        }
        if bracketed {
            stmin = Swift.min(stx, sty)
            stmax = Swift.max(stx, sty)
        } else {
            stmin = step + xtrapl * (step - stx)
            stmax = step + xtrapu * (step - stx)
        }
        step = Swift.max(step, stepMin)
        step = Swift.min(step, stepMax)
        // No further progress possible: fall back to the best step so far.
        if (bracketed && (step <= stmin || step >= stmax)) || (bracketed && stmax - stmin <= xtol * stmax) {
            step = stx
        }
        return .evaluate
    }

    /// `dcstep`: a safeguarded step from the interval (stx, sty) and the trial stp, updating the
    /// interval. stx holds the best step so far, sty the other end.
    static func cstep(stx: inout Double, fx: inout Double, dx: inout Double,
                      sty: inout Double, fy: inout Double, dy: inout Double,
                      stp: inout Double, fp: Double, dp: Double, bracketed: inout Bool,
                      stpmin: Double, stpmax: Double) {
        let sgnd = dp * (dx / abs(dx))
        var stpf: Double
        if fp > fx {
            // Case 1: higher function value. The minimum is bracketed.
            let theta = 3 * (fx - fp) / (stp - stx) + dx + dp
            let s = Swift.max(abs(theta), abs(dx), abs(dp))
            var gamma = s * ((theta / s) * (theta / s) - (dx / s) * (dp / s)).squareRoot()
            if stp < stx { gamma = -gamma }
            let p = (gamma - dx) + theta
            let q = ((gamma - dx) + gamma) + dp
            let r = p / q
            let stpc = stx + r * (stp - stx)
            let stpq = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / 2) * (stp - stx)
            if abs(stpc - stx) < abs(stpq - stx) {
                stpf = stpc
            } else {
                stpf = stpc + (stpq - stpc) / 2
            }
            bracketed = true
        } else if sgnd < 0 {
            // Case 2: lower function value, derivatives of opposite sign. Bracketed.
            let theta = 3 * (fx - fp) / (stp - stx) + dx + dp
            let s = Swift.max(abs(theta), abs(dx), abs(dp))
            var gamma = s * ((theta / s) * (theta / s) - (dx / s) * (dp / s)).squareRoot()
            if stp > stx { gamma = -gamma }
            let p = (gamma - dp) + theta
            let q = ((gamma - dp) + gamma) + dx
            let r = p / q
            let stpc = stp + r * (stx - stp)
            let stpq = stp + (dp / (dp - dx)) * (stx - stp)
            stpf = abs(stpc - stp) > abs(stpq - stp) ? stpc : stpq
            bracketed = true
        } else if abs(dp) < abs(dx) {
            // Case 3: lower function value, same-sign derivatives, the derivative magnitude
            // decreases. The cubic step is used only if it goes in the right direction.
            let theta = 3 * (fx - fp) / (stp - stx) + dx + dp
            let s = Swift.max(abs(theta), abs(dx), abs(dp))
            var gamma = s * Swift.max(0, (theta / s) * (theta / s) - (dx / s) * (dp / s)).squareRoot()
            if stp > stx { gamma = -gamma }
            let p = (gamma - dp) + theta
            let q = (gamma + (dx - dp)) + gamma
            let r = p / q
            let stpc: Double
            if r < 0 && gamma != 0 {
                stpc = stp + r * (stx - stp)
            } else if stp > stx {
                stpc = stpmax
            } else {
                stpc = stpmin
            }
            let stpq = stp + (dp / (dp - dx)) * (stx - stp)
            if bracketed {
                // A step close to stp, inside the bracket.
                stpf = abs(stpc - stp) < abs(stpq - stp) ? stpc : stpq
                if stp > stx {
                    stpf = Swift.min(stp + 0.66 * (sty - stp), stpf)
                } else {
                    stpf = Swift.max(stp + 0.66 * (sty - stp), stpf)
                }
            } else {
                // A step far from stp, clamped to the allowed range.
                stpf = abs(stpc - stp) > abs(stpq - stp) ? stpc : stpq
                stpf = Swift.min(stpmax, stpf)
                stpf = Swift.max(stpmin, stpf)
            }
        } else {
            // Case 4: lower function value, same-sign derivatives, the derivative magnitude does
            // not decrease.
            if bracketed {
                let theta = 3 * (fp - fy) / (sty - stp) + dy + dp
                let s = Swift.max(abs(theta), abs(dy), abs(dp))
                var gamma = s * ((theta / s) * (theta / s) - (dy / s) * (dp / s)).squareRoot()
                if stp > sty { gamma = -gamma }
                let p = (gamma - dp) + theta
                let q = ((gamma - dp) + gamma) + dy
                let r = p / q
                stpf = stp + r * (sty - stp)
            } else if stp > stx {
                stpf = stpmax
            } else {
                stpf = stpmin
            }
        }

        // Update the interval which contains a minimizer.
        if fp > fx {
            sty = stp
            fy = fp
            dy = dp
        } else {
            if sgnd < 0 {
                sty = stx
                fy = fx
                dy = dx
            }
            stx = stp
            fx = fp
            dx = dp
        }
        stp = stpf
    }
}
