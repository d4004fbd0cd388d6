import Kernels

/// DINO's cls-token loss (dino_clstoken_loss.py `DINOLoss.forward`; ssl_meta_arch.py; spec §3.3)
/// over student logits and the teacher's target distributions.
///
/// With B images, L local crops and 2 global crops, and n = max(2L, 1) + 2 loss terms
/// (the official 18 for L = 8):
///   local  = Σ_l Σ_g CE(P_g, S_local,l) / n                      (each CE a mean over B rows)
///   global = 2 · CE([P_crop2; P_crop1], [S_crop1; S_crop2]) / n   (a mean over 2B rows)
/// `teacher` holds the targets in the official swapped order: rows 0..<B come from crop 2's cls,
/// rows B..<2B from crop 1's. Terms are returned unweighted; gradients are added times `weight`.
public enum DINOLoss {
    /// The number of CE terms the official code divides by.
    public static func termCount(localCrops: Int, globalCrops: Int = 2) -> Int {
        Swift.max(localCrops * globalCrops, 1) + (globalCrops - 1) * globalCrops
    }

    /// The local-crops term over `studentLocal` (L·B rows, crop-major); its gradient goes to `dlocal`.
    public static func localTerm(studentLocal: UnsafePointer<Float>, teacher: UnsafePointer<Float>, batch b: Int,
                                 localCrops: Int, classes k: Int, studentTemperature tau: Float, weight: Double,
                                 dlocal: UnsafeMutablePointer<Float>?, parallelism: Parallelism) -> Double {
        guard localCrops > 0, b > 0 else { return 0 }
        let coef = 1 / (Double(b) * Double(termCount(localCrops: localCrops)))
        return softCrossEntropy(student: studentLocal, rows: localCrops * b, classes: k, temperature: tau,
                                gradientScale: weight, dstudent: dlocal, parallelism: parallelism) { r in
            let i = r % b
            return (TeacherTerm(row: teacher + i * k, coefficient: coef),
                    TeacherTerm(row: teacher + (b + i) * k, coefficient: coef))
        }
    }

    /// The global-crops term over `studentGlobal` (2B rows, crop 1 then crop 2); its gradient goes
    /// to `dglobal`.
    public static func globalTerm(studentGlobal: UnsafePointer<Float>, teacher: UnsafePointer<Float>, batch b: Int,
                                  localCrops: Int, classes k: Int, studentTemperature tau: Float, weight: Double,
                                  dglobal: UnsafeMutablePointer<Float>?, parallelism: Parallelism) -> Double {
        guard b > 0 else { return 0 }
        let coef = 2 / (Double(2 * b) * Double(termCount(localCrops: localCrops)))
        return softCrossEntropy(student: studentGlobal, rows: 2 * b, classes: k, temperature: tau,
                                gradientScale: weight, dstudent: dglobal, parallelism: parallelism) { r in
            (TeacherTerm(row: teacher + r * k, coefficient: coef), nil)
        }
    }
}
