import CKernels

/// A LayerNorm to apply to rows as soon as they are final (see `LinearEpilogue.residual`).
public struct LayerNormTarget {
    /// (rows, cols) output, cols = the linear layer's outFeatures.
    public var out: UnsafeMutablePointer<Float>
    public var weight: UnsafePointer<Float>
    public var bias: UnsafePointer<Float>
    public var eps: Float

    public init(out: UnsafeMutablePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, eps: Float) {
        self.out = out
        self.weight = weight
        self.bias = bias
        self.eps = eps
    }
}

/// What a packed linear layer does with y = x Wᵀ + b, fused into the GEMM's last pass over each
/// tile while it is still in registers.
public enum LinearEpilogue {
    /// out = y.
    case store
    /// out = GELU(y), exact erf GELU (`geluForward`).
    case gelu
    /// The pre-norm residual update x ← x + gamma ⊙ y (`residualLayerScaleForward`; gamma nil =
    /// no LayerScale), then, if given, `norm` of the updated rows of x — the next LayerNorm, done
    /// while the rows are in cache. `out` only serves as scratch for partial sums.
    case residual(UnsafeMutablePointer<Float>, gamma: UnsafePointer<Float>?, norm: LayerNormTarget?)
}

/// `nn.Linear` with packed weights and a fused epilogue: for each of `rows` rows of `inp`
/// (row-major, `weight.inFeatures` wide), y = inp · Wᵀ + bias, then `epilogue`. Rows are split
/// into blocks of whole micro-tiles across `parallelism.threads` threads; nothing is allocated.
public func linearForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, weight: PackedLinearWeights,
                          bias: UnsafePointer<Float>?, rows: Int, epilogue: LinearEpilogue = .store,
                          parallelism: Parallelism) {
    guard rows > 0 else { return }
    let n = weight.outFeatures, k = weight.inFeatures, mr = KernelDispatch.tileRows
    let tiles = (rows + mr - 1) / mr
    // Below ~64k multiply-adds a second thread costs more to wake than it saves.
    let threads = rows * n * k < 1 << 16 ? 1 : Swift.min(parallelism.threads, tiles)
    let panels = UnsafePointer(weight.panels.pointer)
    parallelFor(tiles, Parallelism(threads: threads)) { range in
        let r0 = range.lowerBound * mr, r1 = Swift.min(rows, range.upperBound * mr)
        var e = dk_epilogue()
        e.alpha = 1
        e.bias = bias
        switch epilogue {
        case .store:
            e.kind = Int32(DK_EPI_STORE)
        case .gelu:
            e.kind = Int32(DK_EPI_GELU)
        case let .residual(x, gamma, norm):
            e.kind = Int32(DK_EPI_RESIDUAL)
            e.gamma = gamma
            e.residual = x + r0 * n
            e.ldr = n
            if let norm {
                e.ln_out = norm.out + r0 * n
                e.ld_ln = n
                e.ln_weight = norm.weight
                e.ln_bias = norm.bias
                e.ln_eps = norm.eps
            }
        }
        dk_gemm_packed(Int32(r1 - r0), Int32(n), Int32(k), inp + r0 * k, k, panels, out + r0 * n, n, &e)
    }
}
