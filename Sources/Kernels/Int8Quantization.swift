import CKernels

/// The int8 rule of `--precision int8` and `export-onnx --dtype int8`: symmetric per-row
/// quantization. Weights are quantized per output channel (a row of PyTorch's (out, in) Linear
/// weight), activations per token (a row of a GEMM's input); both use the same rule:
///
///     s = max_k |x[k]| / 127   (s = 1 where that is 0: an all-zero row, or one so small it underflows)
///     q[k] = clamp(rint(x[k] / s), −127, 127)   (rint: round half to even)
///
/// so that Σ_k q_a·q_w is exact in int32 and y = (float(acc) · s_a) · s_w + bias. The rule itself
/// is written once, in C (`dk_int8_scale`, `dk_int8_quantize`), where the GEMM packs with it; this
/// is its Swift face. The ONNX export writes the weights this returns and computes the
/// activations' rule with ONNX ops (ReduceMax(Abs), Div, Round, Clip), the same float operations.
public enum Int8Quantization {
    /// The largest magnitude a quantized value takes (−128 is never used: the range is symmetric).
    public static let limit: Float = 127

    /// Every row of the (rows, cols) row-major `values` with its own scale.
    public static func perRow(_ values: [Float], rows: Int, cols: Int) -> (q: [Int8], scales: [Float]) {
        precondition(values.count == rows * cols, "perRow: \(values.count) values for \(rows) x \(cols)")
        var q = [Int8](repeating: 0, count: values.count)
        var scales = [Float](repeating: 1, count: rows)
        values.withUnsafeBufferPointer { x in
            q.withUnsafeMutableBufferPointer { out in
                scales.withUnsafeMutableBufferPointer { s in
                    dk_int8_quantize_rows(out.baseAddress, s.baseAddress, x.baseAddress, rows, cols)
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
