import Foundation
import Kernels

/// A teacher row paired with a student row, and the pair's coefficient in the loss.
struct TeacherTerm {
    var row: UnsafePointer<Float>
    var coefficient: Double
}

/// DINOv2's cross-entropies, −Σ_k t_k · log_softmax(s / τ)_k, over `rows` student rows, each
/// paired with one or two teacher rows (`terms(r)`) with a coefficient each: how DINO pairs a
/// local crop with both teacher crops and how iBOT weights a patch by its crop's mask count.
///
/// Returns Σ_r Σ_pairs coef · CE and adds `gradientScale` · Σ_pairs coef · (softmax(s/τ)·Σt − t) / τ
/// to `dstudent`'s rows. Sums are taken in Double (the log-sum-exp, the dot products); rows run
/// in parallel and their values are summed per chunk, then chunk by chunk in order.
func softCrossEntropy(student: UnsafePointer<Float>, rows: Int, classes k: Int, temperature tau: Float,
                      gradientScale: Double, dstudent: UnsafeMutablePointer<Float>?, parallelism: Parallelism,
                      terms: (Int) -> (TeacherTerm, TeacherTerm?)) -> Double {
    guard rows > 0 else { return 0 }
    let p = pieces(rows, work: rows * k * 16, minimum: 2, parallelism)
    // One partial sum per worker, on the stack of this call (no heap allocation per step).
    return withUnsafeTemporaryAllocation(of: Double.self, capacity: p.threads) { sums in
        sums.initialize(repeating: 0)
        let sumsBase = sums.baseAddress!
        parallelForWorkers(rows, p) { range, worker in
            var acc = 0.0
            for r in range {
                let s = student + r * k
                var m = -Float.infinity
                for i in 0..<k { m = Swift.max(m, s[i] / tau) }
                var sum = 0.0
                for i in 0..<k { sum += Double(Foundation.exp(s[i] / tau - m)) }
                let lse = Double(m) + Foundation.log(sum)
                let (a, b) = terms(r)
                // Σ_t c_t · (−Σ_i t_i · (s_i/τ − lse)) and M = Σ_t c_t · Σ_i t_i.
                var mass = 0.0
                func add(_ t: TeacherTerm) {
                    guard t.coefficient != 0 else { return }
                    var dot = 0.0, tm = 0.0
                    for i in 0..<k {
                        dot += Double(t.row[i]) * Double(s[i] / tau)
                        tm += Double(t.row[i])
                    }
                    acc -= t.coefficient * (dot - lse * tm)
                    mass += t.coefficient * tm
                }
                add(a)
                if let b { add(b) }
                guard let dstudent else { continue }
                // d/ds_i = gradientScale / τ · (p_i · M − Σ_t c_t t_i).
                let ds = dstudent + r * k
                let g = Float(gradientScale / Double(tau)), mf = Float(mass), lsef = Float(lse)
                let ca = Float(a.coefficient), cb = Float(b?.coefficient ?? 0)
                if let b {
                    for i in 0..<k {
                        let prob = Foundation.exp(s[i] / tau - lsef)
                        ds[i] += g * (prob * mf - ca * a.row[i] - cb * b.row[i])
                    }
                } else {
                    for i in 0..<k {
                        let prob = Foundation.exp(s[i] / tau - lsef)
                        ds[i] += g * (prob * mf - ca * a.row[i])
                    }
                }
            }
            sumsBase[worker] = acc
        }
        return sums.reduce(0, +)
    }
}
