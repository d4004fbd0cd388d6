import Foundation

/// Softmax over the last dimension of a rows × cols matrix, in place: exp(x − max) / Σ, with the
/// sum's reciprocal multiplied in as ATen's vectorised CPU kernel does.
@inline(__always)
public func softmaxRowsInPlace(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
    for r in 0..<rows {
        let row = x + r * cols
        var m = -Float.infinity
        for i in 0..<cols where row[i] > m { m = row[i] }
        var sum: Float = 0
        for i in 0..<cols {
            let e = exp(row[i] - m)
            row[i] = e
            sum += e
        }
        let inv = 1 / sum
        for i in 0..<cols { row[i] *= inv }
    }
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
