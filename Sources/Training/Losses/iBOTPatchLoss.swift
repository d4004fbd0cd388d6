import Kernels

/// iBOT's masked-patch loss (ibot_patch_loss.py `forward_masked`; ssl_meta_arch.py; spec §3.4):
/// for masked patch j of global crop i, with n_i patches masked in that crop,
///   loss = −Σ_j (1 / max(n_i, 1)) · Σ_k t_jk · log_softmax(s_j / τ)_k / (2B)
/// — the per-crop mean over masked patches, averaged over all 2B global crops (crops without a
/// mask count in the denominator). ssl_meta_arch then multiplies by `loss_scales` = 2 and
/// `1 / n_global_crops` = ½, which cancel; the term returned here includes them.
public enum iBOTPatchLoss {
    /// `student` and `teacher` are the n_m masked rows in mask-index order (crop-major, then patch);
    /// `weights[j]` = 1 / max(n_i, 1) for row j; `crops` = 2B.
    public static func term(student: UnsafePointer<Float>, teacher: UnsafePointer<Float>, weights: UnsafePointer<Float>,
                            maskedRows: Int, crops: Int, classes k: Int, studentTemperature tau: Float, weight: Double,
                            dstudent: UnsafeMutablePointer<Float>?, parallelism: Parallelism) -> Double {
        guard maskedRows > 0, crops > 0 else { return 0 }
        let scale = 2.0 * 0.5 / Double(crops)
        return softCrossEntropy(student: student, rows: maskedRows, classes: k, temperature: tau,
                                gradientScale: weight, dstudent: dstudent, parallelism: parallelism) { j in
            (TeacherTerm(row: teacher + j * k, coefficient: Double(weights[j]) * scale), nil)
        }
    }

    /// `masks_weight` as the collate computes it: 1 / max(#masked in the row's crop, 1) for every
    /// masked entry, in mask-index order. `masks` is (crops, patches).
    public static func maskWeights(masks: UnsafePointer<Bool>, crops: Int, patches: Int,
                                   into weights: UnsafeMutablePointer<Float>) -> Int {
        var j = 0
        for c in 0..<crops {
            var n = 0
            for p in 0..<patches where masks[c * patches + p] { n += 1 }
            let w = 1 / Float(Swift.max(n, 1))
            for _ in 0..<n {
                weights[j] = w
                j += 1
            }
        }
        return j
    }
}
