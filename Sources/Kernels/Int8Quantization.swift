/// The int8 rule of `--precision int8` and `export-onnx --dtype int8`, in one place: symmetric
/// per-row quantization. Weights are quantized per output channel (a row of PyTorch's (out, in)
/// Linear weight), activations per token (a row of a GEMM's input); both use the same rule:
///
///     s = max_k |x[k]| / 127   (s = 1 for an all-zero row)
///     q[k] = clamp(rint(x[k] / s), −127, 127)   (rint: round half to even)
///
/// so that Σ_k q_a·q_w is exact in int32 and y = (float(acc) · s_a) · s_w + bias. The ONNX export
/// writes the weights this function returns and computes the activations' rule with ONNX ops
/// (ReduceMax(Abs), Div, Round, Clip), which are the same float operations.
public enum Int8Quantization {
    /// The largest magnitude a quantized value takes (−128 is never used: the range is symmetric).
    public static let limit: Float = 127

    /// The scale of a row whose largest magnitude is `maxAbs`.
    @inline(__always)
    public static func scale(maxAbs: Float) -> Float { maxAbs == 0 ? 1 : maxAbs / limit }

    /// `x` divided by `scale`, rounded half to even and clamped to ±127. NaN (which callers
    /// refuse before quantizing) gives 0 rather than trapping in the Int8 conversion.
    @inline(__always)
    public static func quantize(_ x: Float, scale: Float) -> Int8 {
        let r = (x / scale).rounded(.toNearestOrEven)
        guard !r.isNaN else { return 0 }
        return Int8(Swift.min(Swift.max(r, -limit), limit))
    }

    /// Every row of the (rows, cols) row-major `values` with its own scale.
    public static func perRow(_ values: [Float], rows: Int, cols: Int) -> (q: [Int8], scales: [Float]) {
        precondition(values.count == rows * cols, "perRow: \(values.count) values for \(rows) x \(cols)")
        var q = [Int8](repeating: 0, count: values.count)
        var scales = [Float](repeating: 1, count: rows)
        values.withUnsafeBufferPointer { x in
            q.withUnsafeMutableBufferPointer { out in
                for r in 0..<rows {
                    let start = r * cols
                    var maxAbs: Float = 0
                    for k in start..<(start + cols) { maxAbs = Swift.max(maxAbs, abs(x[k])) }
                    let s = scale(maxAbs: maxAbs)
                    scales[r] = s
                    for k in start..<(start + cols) { out[k] = quantize(x[k], scale: s) }
                }
            }
        }
        return (q, scales)
    }

    /// A Linear weight in PyTorch's (out, in) layout, one scale per output channel.
    public static func perChannel(weight: [Float], out: Int, in inFeatures: Int) -> (q: [Int8], scales: [Float]) {
        perRow(weight, rows: out, cols: inFeatures)
    }
}
