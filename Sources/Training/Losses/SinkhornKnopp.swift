import Foundation
import Kernels

/// The teacher's Sinkhorn-Knopp targets (dino_clstoken_loss.py / ibot_patch_loss.py
/// `sinkhorn_knopp_teacher`; spec §3.1), on one process:
///   Q = exp(T / τ)ᵀ (K × B);  Q /= ΣQ
///   3 times: each prototype row /= its sum, then /= K; each sample column /= its sum, then /= Bt
///   Q *= Bt; return Qᵀ
/// with Bt the number of rows (DINO: 2B; iBOT: the masked-patch count). No max is subtracted
/// before exp, as in the official code: teacher logits are bounded by |g_k| / τ. Values are kept
/// in Float with each division rounded as torch rounds it; sums are taken in Double.
public enum SinkhornKnopp {
    public static let iterations = 3

    /// Targets for `rows` teacher rows (rows, K) into `out` (rows, K). `scratch` holds K Doubles
    /// (the per-prototype sums).
    public static func targets(out: UnsafeMutablePointer<Float>, teacher: UnsafePointer<Float>, rows: Int, classes k: Int,
                               temperature tau: Float, scratch: UnsafeMutablePointer<Double>,
                               iterations: Int = SinkhornKnopp.iterations, parallelism: Parallelism = .serial) throws {
        guard rows > 0 else { return }
        let n = rows * k
        var overflow = false
        parallelFor(rows, pieces(rows, work: n * 8, minimum: 2, parallelism)) { range in
            for i in (range.lowerBound * k)..<(range.upperBound * k) { out[i] = Foundation.exp(teacher[i] / tau) }
        }
        var total = 0.0
        for i in 0..<n {
            if !out[i].isFinite { overflow = true }
            total += Double(out[i])
        }
        guard !overflow else {
            throw TrainingError.numeric("Sinkhorn-Knopp: exp(teacher logit / \(tau)) overflows Float (the official code would produce NaN)")
        }
        let sumQ = Float(total)
        for i in 0..<n { out[i] /= sumQ }
        let kf = Float(k), bt = Float(rows)
        for _ in 0..<iterations {
            // Per prototype: sum over the samples (row-major pass into Double sums).
            for c in 0..<k { scratch[c] = 0 }
            for r in 0..<rows { for c in 0..<k { scratch[c] += Double(out[r * k + c]) } }
            for r in 0..<rows {
                for c in 0..<k { out[r * k + c] = out[r * k + c] / Float(scratch[c]) / kf }
            }
            // Per sample: sum over the prototypes.
            for r in 0..<rows {
                var s = 0.0
                for c in 0..<k { s += Double(out[r * k + c]) }
                let sf = Float(s)
                for c in 0..<k { out[r * k + c] = out[r * k + c] / sf / bt }
            }
        }
        for i in 0..<n { out[i] *= bt }
    }

    /// `targets` with a scratch of its own (tests, one-off use).
    public static func targets(out: UnsafeMutablePointer<Float>, teacher: UnsafePointer<Float>, rows: Int, classes k: Int,
                               temperature tau: Float) throws {
        var scratch = [Double](repeating: 0, count: k)
        try scratch.withUnsafeMutableBufferPointer {
            try targets(out: out, teacher: teacher, rows: rows, classes: k, temperature: tau, scratch: $0.baseAddress!)
        }
    }
}
