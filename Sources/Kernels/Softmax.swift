import CKernels

/// Softmax over the last dimension of a rows × cols matrix, in place: exp(x − max) / Σ, with the
/// sum's reciprocal multiplied in as ATen's vectorised CPU kernel does.
@inline(__always)
public func softmaxRowsInPlace(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
    dk_softmax_rows(x, Int32(rows), Int32(cols), cols)
}

/// `torch.softmax(x, dim=-1)` from `inp` into `out` (rows × cols), parallel over rows.
public func softmaxForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, rows: Int, cols: Int,
                           parallelism: Parallelism = .serial) {
    let p = rows * cols < 1 << 15 ? Parallelism.serial : parallelism
    parallelFor(rows, p) { range in
        let base = range.lowerBound * cols
        (out + base).update(from: inp + base, count: range.count * cols)
        softmaxRowsInPlace(out + base, rows: range.count, cols: cols)
    }
}
