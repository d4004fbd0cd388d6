/// The residual update of a pre-norm block with LayerScale: x ← x + gamma ⊙ branch, row by row
/// over (rows, cols), gamma of length cols. PyTorch rounds gamma · branch first, then adds
/// (`x + ls(branch)`); this does the same (Swift does not contract it into an FMA).
public func residualLayerScaleForward(x: UnsafeMutablePointer<Float>, branch: UnsafePointer<Float>,
                                      gamma: UnsafePointer<Float>?, rows: Int, cols: Int,
                                      parallelism: Parallelism = .serial) {
    let p = rows * cols < 1 << 16 ? Parallelism.serial : parallelism
    parallelFor(rows, p) { range in
        for r in range {
            let xr = x + r * cols, br = branch + r * cols
            if let gamma {
                for i in 0..<cols { xr[i] = xr[i] + gamma[i] * br[i] }
            } else {
                for i in 0..<cols { xr[i] = xr[i] + br[i] }
            }
        }
    }
}
