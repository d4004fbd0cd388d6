import Kernels

// LayerScale inside the residual update, x ← x + gamma ⊙ branch (Kernels'
// `residualLayerScaleForward`; without LayerScale gamma is nil and the branch is added as is).
// The branch output is kept for gamma's gradient.

/// Backward of `residualLayerScaleForward` for the branch side (the residual side passes the
/// gradient through unchanged): `dbranch` = gamma ⊙ dx (overwritten; a copy of dx without
/// gamma), `dgamma` += Σ_rows branch ⊙ dx.
public func residualLayerScaleBackward(dbranch: UnsafeMutablePointer<Float>, dgamma: UnsafeMutablePointer<Float>?,
                                       dx: UnsafePointer<Float>, branch: UnsafePointer<Float>,
                                       gamma: UnsafePointer<Float>?, rows: Int, cols: Int, parallelism: Parallelism) {
    guard rows > 0, cols > 0 else { return }
    let work = rows * cols
    parallelFor(rows, pieces(rows, work: work, minimum: 16, parallelism)) { range in
        for r in range {
            let g = dx + r * cols, o = dbranch + r * cols
            if let gamma {
                for i in 0..<cols { o[i] = gamma[i] * g[i] }
            } else {
                o.update(from: g, count: cols)
            }
        }
    }
    guard let dgamma else { return }
    parallelFor(cols, pieces(cols, work: work, minimum: 8, parallelism)) { range in
        for r in 0..<rows {
            let g = dx + r * cols, b = branch + r * cols
            for i in range { dgamma[i] += b[i] * g[i] }
        }
    }
}
