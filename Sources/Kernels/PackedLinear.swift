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
/// (row-major, `weight.inFeatures` wide), y = inp · Wᵀ + bias, then `epilogue`. With more than one
/// thread the work is split by output columns (panel groups, and row blocks when there are few
/// panels) handed out from a counter (`dk_gemm_packed_columns`), then the epilogue's LayerNorm runs
/// over rows; every element is computed the same way either way. Nothing is allocated. Weights
/// packed as bf16 run the bf16 GEMM (`inp` rounded to bf16 as it is packed, float accumulation),
/// weights packed as int8 the int8 GEMM (`inp` quantized per row as it is packed, int32 sums),
/// with the same epilogues.
public func linearForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, weight: PackedLinearWeights,
                          bias: UnsafePointer<Float>?, rows: Int, epilogue: LinearEpilogue = .store,
                          parallelism: Parallelism) {
    guard rows > 0 else { return }
    let n = weight.outFeatures, k = weight.inFeatures
    // Below ~64k multiply-adds a second thread costs more to wake than it saves.
    let threads = rows * n * k < 1 << 16 ? 1 : parallelism.threads
    let panels = UnsafePointer(weight.panels.pointer)
    var e = dk_epilogue()
    e.alpha = 1
    e.bias = bias
    var norm: LayerNormTarget?
    var residual: UnsafeMutablePointer<Float>?
    switch epilogue {
    case .store:
        e.kind = Int32(DK_EPI_STORE)
    case .gelu:
        e.kind = Int32(DK_EPI_GELU)
    case let .residual(x, gamma, target):
        e.kind = Int32(DK_EPI_RESIDUAL)
        e.gamma = gamma
        e.residual = x
        e.ldr = n
        residual = x
        norm = target
        if threads == 1, let target {
            e.ln_out = target.out
            e.ld_ln = n
            e.ln_weight = target.weight
            e.ln_bias = target.bias
            e.ln_eps = target.eps
        }
    }
    if threads > 1 { BLASThreads.set(1) }
    switch weight.precision {
    case .f32:
        if threads == 1 {
            dk_gemm_packed(Int32(rows), Int32(n), Int32(k), inp, k, panels, out, n, &e)
        } else {
            dk_gemm_packed_columns(Int32(rows), Int32(n), Int32(k), inp, k, panels, out, n, &e, Int32(threads))
        }
    case .bf16:
        panels.withMemoryRebound(to: UInt32.self, capacity: weight.panels.count) {
            if threads == 1 {
                dk_gemm_bf16_packed(Int32(rows), Int32(n), Int32(k), inp, k, $0, out, n, &e)
            } else {
                dk_gemm_bf16_packed_columns(Int32(rows), Int32(n), Int32(k), inp, k, $0, out, n, &e, Int32(threads))
            }
        }
    case .int8:
        panels.withMemoryRebound(to: UInt32.self, capacity: weight.panels.count) { words in
            weight.channelSums.pointer.withMemoryRebound(to: Int32.self, capacity: weight.channelSums.count) { sums in
                var w = dk_int8_weights(panels: words, scales: weight.channelScales.pointer, sums: sums)
                if threads == 1 {
                    dk_gemm_int8_packed(Int32(rows), Int32(n), Int32(k), inp, k, &w, out, n, &e)
                } else {
                    dk_gemm_int8_packed_columns(Int32(rows), Int32(n), Int32(k), inp, k, &w, out, n, &e, Int32(threads))
                }
            }
        }
    }
    guard threads > 1 else { return }
    if let norm, let residual {
        layerNormForward(out: norm.out, mean: nil, rstd: nil, inp: residual, weight: norm.weight, bias: norm.bias,
                         rows: rows, cols: n, eps: norm.eps, parallelism: parallelism)
    }
}
