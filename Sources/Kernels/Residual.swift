import CKernels

/// The residual update of a pre-norm block with LayerScale: x ← x + gamma ⊙ branch, row by row
/// over (rows, cols), gamma of length cols. PyTorch rounds gamma · branch first, then adds
/// (`x + ls(branch)`); this does the same (no fused multiply-add). The packed `linearForward`
/// can do this update inside its GEMM (`LinearEpilogue.residual`).
public func residualLayerScaleForward(x: UnsafeMutablePointer<Float>, branch: UnsafePointer<Float>,
                                      gamma: UnsafePointer<Float>?, rows: Int, cols: Int,
                                      parallelism: Parallelism = .serial) {
    let p = rows * cols < 1 << 16 ? Parallelism.serial : parallelism
    parallelFor(rows, p) { range in
        let o = range.lowerBound * cols
        dk_residual(x + o, branch + o, gamma, Int32(range.count), Int32(cols))
    }
}
