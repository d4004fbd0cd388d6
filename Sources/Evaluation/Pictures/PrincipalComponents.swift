/// The leading principal axes of a set of feature rows (for PCA pictures of patch features):
/// the top eigenvectors of the covariance of the centred rows, found in Double precision by
/// subspace iteration with a Rayleigh–Ritz step (works for any width, ViT-g's 1536 included,
/// at the cost of a few d×d products per iteration rather than a full eigendecomposition).
///
/// Signs are fixed as NumPy/PyTorch-agnostic code usually does: each axis' largest |loading|
/// is positive.
public struct PrincipalComponents: Sendable {
    public let mean: [Double]
    /// k axes of `mean.count` values each, by decreasing variance.
    public let axes: [[Double]]
    /// The covariance eigenvalue (variance along the axis, n − 1 normalisation) of each axis.
    public let variances: [Double]

    /// Fits `components` axes to `rows` × `columns` row-major values.
    public init(_ x: [Float], rows n: Int, columns d: Int, components: Int) {
        var mean = [Double](repeating: 0, count: d)
        for r in 0..<n { for j in 0..<d { mean[j] += Double(x[r * d + j]) } }
        for j in 0..<d { mean[j] /= Double(Swift.max(1, n)) }
        // Covariance, upper triangle then mirrored.
        var cov = [Double](repeating: 0, count: d * d)
        var centred = [Double](repeating: 0, count: d)
        for r in 0..<n {
            for j in 0..<d { centred[j] = Double(x[r * d + j]) - mean[j] }
            for i in 0..<d {
                let ci = centred[i]
                if ci == 0 { continue }
                for j in i..<d { cov[i * d + j] += ci * centred[j] }
            }
        }
        let norm = 1 / Double(Swift.max(1, n - 1))
        for i in 0..<d { for j in i..<d { cov[i * d + j] *= norm; cov[j * d + i] = cov[i * d + j] } }
        let k = Swift.min(components, d)
        let (vectors, values) = PrincipalComponents.topEigenvectors(cov, d: d, k: k)
        self.mean = mean
        self.axes = vectors
        self.variances = values
    }

    /// Each row's coordinates on the axes: `axes.count` arrays of `rows` values.
    public func project(_ x: [Float], rows n: Int) -> [[Double]] {
        let d = mean.count
        return axes.map { axis in
            (0..<n).map { r in
                var s = 0.0
                for j in 0..<d { s += (Double(x[r * d + j]) - mean[j]) * axis[j] }
                return s
            }
        }
    }

    /// Top-k eigenpairs of the symmetric d×d `a`, eigenvalues decreasing.
    static func topEigenvectors(_ a: [Double], d: Int, k: Int) -> ([[Double]], [Double]) {
        guard k > 0, d > 0 else { return ([], []) }
        let m = Swift.min(d, Swift.max(2 * k, k + 8)) // oversampled block: faster convergence
        // Deterministic start: a fixed LCG, so pictures are reproducible.
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var q = (0..<m).map { _ in
            (0..<d).map { _ -> Double in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return Double(Int64(bitPattern: state >> 11)) / Double(1 << 52) - 0.5
            }
        }
        orthonormalize(&q)
        var previous = [Double](repeating: .infinity, count: k)
        for _ in 0..<1000 {
            q = q.map { multiply(a, $0, d: d) }
            orthonormalize(&q)
            // Orthogonal iteration: column i tends to eigenvector i, so the wanted k columns
            // settle first; the extra columns only speed them up and need not converge.
            let ritz = q.prefix(k).map { v in dot(v, multiply(a, v, d: d)) }
            let scale = Swift.max(1e-300, ritz.map(abs).max() ?? 0)
            let change = zip(ritz, previous).map { abs($0 - $1) }.max() ?? 0
            previous = ritz
            if change <= 1e-13 * scale { break }
        }
        // Rayleigh–Ritz: diagonalise Qᵀ A Q and rotate the block.
        let aq = q.map { multiply(a, $0, d: d) }
        var t = [Double](repeating: 0, count: m * m)
        for i in 0..<m { for j in 0..<m { t[i * m + j] = dot(q[i], aq[j]) } }
        let (values, rotation) = jacobiEigen(t, n: m)
        let order = (0..<m).sorted { values[$0] > values[$1] }.prefix(k)
        var vectors: [[Double]] = []
        for c in order {
            var v = [Double](repeating: 0, count: d)
            for i in 0..<m { let r = rotation[i * m + c]; for j in 0..<d { v[j] += r * q[i][j] } }
            let biggest = v.indices.max { abs(v[$0]) < abs(v[$1]) } ?? 0
            if v[biggest] < 0 { v = v.map { -$0 } }
            vectors.append(v)
        }
        return (vectors, order.map { values[$0] })
    }

    static func multiply(_ a: [Double], _ v: [Double], d: Int) -> [Double] {
        (0..<d).map { i in
            var s = 0.0
            for j in 0..<d { s += a[i * d + j] * v[j] }
            return s
        }
    }

    static func dot(_ a: [Double], _ b: [Double]) -> Double {
        var s = 0.0
        for i in a.indices { s += a[i] * b[i] }
        return s
    }

    /// Modified Gram–Schmidt, twice (numerically orthogonal); a vanishing vector is replaced by a
    /// unit vector not yet in the span.
    static func orthonormalize(_ q: inout [[Double]]) {
        let d = q.first?.count ?? 0
        for _ in 0..<2 {
            for i in q.indices {
                for j in 0..<i {
                    let p = dot(q[i], q[j])
                    for t in 0..<d { q[i][t] -= p * q[j][t] }
                }
                var n = dot(q[i], q[i]).squareRoot()
                if n < 1e-300 {
                    q[i] = [Double](repeating: 0, count: d)
                    q[i][i % d] = 1
                    n = 1
                }
                for t in 0..<d { q[i][t] /= n }
            }
        }
    }

    /// Cyclic Jacobi for a small symmetric n×n matrix: eigenvalues and eigenvectors (columns).
    static func jacobiEigen(_ input: [Double], n: Int) -> ([Double], [Double]) {
        var a = input
        var v = [Double](repeating: 0, count: n * n)
        for i in 0..<n { v[i * n + i] = 1 }
        for _ in 0..<100 {
            var off = 0.0
            for i in 0..<n { for j in (i + 1)..<n { off += a[i * n + j] * a[i * n + j] } }
            if off < 1e-30 { break }
            for p in 0..<n {
                for r in (p + 1)..<n where a[p * n + r] != 0 {
                    let theta = (a[r * n + r] - a[p * n + p]) / (2 * a[p * n + r])
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<n { // columns p, r
                        let akp = a[k * n + p], akr = a[k * n + r]
                        a[k * n + p] = c * akp - s * akr
                        a[k * n + r] = s * akp + c * akr
                    }
                    for k in 0..<n { // rows p, r
                        let apk = a[p * n + k], ark = a[r * n + k]
                        a[p * n + k] = c * apk - s * ark
                        a[r * n + k] = s * apk + c * ark
                    }
                    for k in 0..<n {
                        let vkp = v[k * n + p], vkr = v[k * n + r]
                        v[k * n + p] = c * vkp - s * vkr
                        v[k * n + r] = s * vkp + c * vkr
                    }
                }
            }
        }
        return ((0..<n).map { a[$0 * n + $0] }, v)
    }
}
