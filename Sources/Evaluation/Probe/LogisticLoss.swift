import Datasets
import Foundation
import Kernels

/// sklearn's objective for `LogisticRegression(penalty="l2", C)` with the lbfgs solver, in
/// sklearn's own scaling (`LinearModelLoss.loss_gradient` with `l2_reg_strength = 1 / (C·n)`):
///
///     f(W, b) = (1/n) Σ_i loss(y_i, x_i·Wᵀ + b) + ½·α·‖W‖²,   α = 1 / (C·n)
///
/// i.e. the textbook C·Σ loss + ½‖W‖² divided by C·n: the same minimiser, but the gradient
/// tolerance applies to this scaled gradient. `loss` is the multinomial cross-entropy
/// (`HalfMultinomialLoss`: logsumexp(z) − z_y) for 3+ classes and the binomial one
/// (`HalfBinomialLoss`: log(1 + eˣ) − y·z, one weight row, y = 1 for the second class) for 2,
/// as sklearn ≥ 1.5 fits them. The intercept is not penalised.
///
/// Like sklearn on float32 features, the weights are rounded to float32 for the two products
/// (logits X·Wᵀ + b and the gradient Gᵀ·X) and those run in single precision through BLAS;
/// everything else (softmax, log-loss, sums, penalty) is computed in double. The rows are
/// processed in blocks that stay in cache between the two products, split across threads.
struct LogisticLoss {
    let x: FeatureMatrix
    let targets: [Int32]
    /// Columns of W: the class count, or 1 for the binomial case.
    let outputs: Int
    let binomial: Bool
    let alpha: Double
    let fitIntercept: Bool
    let parallelism: Parallelism
    static let blockRows = 1024

    var parameterCount: Int { outputs * x.columns + (fitIntercept ? outputs : 0) }

    /// f at `params` (weights row-major (outputs × D), then the intercepts); ∇f into `grad`.
    func evaluate(_ params: [Double], _ grad: inout [Double]) -> Double {
        let n = x.rows, d = x.columns, k = outputs
        let weights32 = params[0..<(k * d)].map { Float($0) }
        let bias32: [Float] = fitIntercept ? params[(k * d)..<(k * d + k)].map { Float($0) } : [Float](repeating: 0, count: k)

        let workers = Swift.max(1, Swift.min(parallelism.threads, (n + LogisticLoss.blockRows - 1) / LogisticLoss.blockRows))
        // Per worker: loss sum, weight gradient (k·d), intercept gradient (k), in double.
        let slot = 1 + k * d + k
        var partial = [Double](repeating: 0, count: workers * slot)
        partial.withUnsafeMutableBufferPointer { partialBuffer in
            let partialBase = UncheckedPointer(partialBuffer.baseAddress!)
            x.values.withUnsafeBufferPointer { xs in
                let xBase = UncheckedPointer(UnsafeMutablePointer(mutating: xs.baseAddress!))
                weights32.withUnsafeBufferPointer { w in
                    bias32.withUnsafeBufferPointer { b in
                        let wBase = UncheckedPointer(UnsafeMutablePointer(mutating: w.baseAddress!))
                        let bBase = UncheckedPointer(UnsafeMutablePointer(mutating: b.baseAddress!))
                        parallelForWorkers(n, Parallelism(threads: workers)) { range, worker in
                            self.accumulate(rows: range, x: xBase.pointer, w: wBase.pointer, b: bBase.pointer,
                                            into: partialBase.pointer + worker * slot)
                        }
                    }
                }
            }
        }

        var lossSum = 0.0
        var g = [Double](repeating: 0, count: slot - 1)
        for wkr in 0..<workers {
            lossSum += partial[wkr * slot]
            for j in 0..<(slot - 1) { g[j] += partial[wkr * slot + 1 + j] }
        }
        let invN = 1 / Double(n)
        var penalty = 0.0
        for j in 0..<(k * d) {
            let wj = params[j]
            penalty += wj * wj
            grad[j] = g[j] * invN + alpha * wj
        }
        if fitIntercept {
            for j in 0..<k { grad[k * d + j] = g[k * d + j] * invN }
        }
        return lossSum * invN + 0.5 * alpha * penalty
    }

    /// Loss and gradient sums (unscaled) of `rows` into `out`: [loss, dW (k·d), db (k)].
    ///
    /// The products are skinny (k = 10 outputs against D = 384): BLAS runs them far below its
    /// peak, and the orientation matters. Measured on this machine (OpenBLAS, one thread,
    /// 50,000 × 384, k = 10): logits as Zᵀ = W·X_blockᵀ (class-major) ~25% faster than
    /// X_block·Wᵀ; blocks of 1024 rows keep the block in cache for the gradient pass.
    private func accumulate(rows: Range<Int>, x: UnsafeMutablePointer<Float>, w: UnsafeMutablePointer<Float>,
                            b: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Double>) {
        let d = self.x.columns, k = outputs, block = LogisticLoss.blockRows
        // Class-major scratch: z[c · bs + r], logits first, then the pointwise gradient.
        let z = UnsafeMutablePointer<Float>.allocate(capacity: block * k)
        let blockGrad = UnsafeMutablePointer<Float>.allocate(capacity: k * d)
        defer { z.deallocate(); blockGrad.deallocate() }
        var probs = [Double](repeating: 0, count: k)
        var lossSum = 0.0
        targets.withUnsafeBufferPointer { targets in
            var r0 = rows.lowerBound
            while r0 < rows.upperBound {
                let bs = Swift.min(block, rows.upperBound - r0)
                let xb = x + r0 * d
                // Logits: Zᵀ = W · X_blockᵀ (float32, as sklearn's X @ W.T for float32 X).
                sgemm(transB: true, m: k, n: bs, k: d, a: w, lda: d, b: xb, ldb: d, c: z, ldc: bs)
                for r in 0..<bs {
                    let y = Int(targets[r0 + r])
                    if binomial {
                        let v = Double(z[r] + b[0])
                        // log(1 + e^v) − y·v, and its derivative sigmoid(v) − y, overflow-free.
                        let softplus = v > 0 ? v + Foundation.log1p(Foundation.exp(-v)) : Foundation.log1p(Foundation.exp(v))
                        lossSum += softplus - (y == 1 ? v : 0)
                        let sig = v >= 0 ? 1 / (1 + Foundation.exp(-v)) : Foundation.exp(v) / (1 + Foundation.exp(v))
                        z[r] = Float(sig - (y == 1 ? 1 : 0))
                    } else {
                        var m = -Double.infinity
                        for c in 0..<k {
                            let v = Double(z[c * bs + r] + b[c])
                            probs[c] = v
                            if v > m { m = v }
                        }
                        let zy = probs[y]
                        var sum = 0.0
                        for c in 0..<k {
                            let e = Foundation.exp(probs[c] - m)
                            probs[c] = e
                            sum += e
                        }
                        lossSum += Foundation.log(sum) + m - zy
                        let inv = 1 / sum
                        for c in 0..<k { z[c * bs + r] = Float(probs[c] * inv - (c == y ? 1 : 0)) }
                    }
                }
                // Gradient: G_blockᵀ · X_block, summed in double across blocks.
                sgemm(m: k, n: d, k: bs, a: z, lda: bs, b: xb, ldb: d, c: blockGrad, ldc: d)
                for j in 0..<(k * d) { out[1 + j] += Double(blockGrad[j]) }
                if fitIntercept {
                    for c in 0..<k {
                        var s = 0.0
                        for r in 0..<bs { s += Double(z[c * bs + r]) }
                        out[1 + k * d + c] += s
                    }
                }
                r0 += bs
            }
        }
        out[0] += lossSum
    }
}
