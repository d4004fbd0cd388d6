import Foundation
import Kernels
import TensorStore

/// DINOv3's position scheme: the official `RopePositionEmbedding` in evaluation mode (no shift,
/// jitter or rescale; `normalize_coords = "separate"`; float32) and the rotation
/// `x·cos + rotate_half(x)·sin` it applies to the queries and keys of the patch tokens in every
/// attention. The cls and storage tokens are not rotated.
///
/// For an h × w patch grid, token n = (i, j) in row-major order:
///   coords    = (2·(i + ½)/h − 1, 2·(j + ½)/w − 1)                 (patch centres in [−1, 1])
///   angle[k]  = 2π · coords[0] / periods[k],  angle[P + k] = 2π · coords[1] / periods[k]
///   for k < P = D_head / 4, then tiled twice to D_head; sin and cos of that.
/// Every operation is the official one in its order and in float32, so the tables differ from
/// PyTorch's only by the last bit its vectorised sin/cos may round differently.
public struct RotaryPositions: Sendable {
    /// (h·w, D_head) each.
    public let sin: FloatBuffer
    public let cos: FloatBuffer
    public let headDim: Int

    /// The tables for an h × w grid (Training builds them once per image size).
    public init(periods: [Float], patchRows h: Int, patchCols w: Int) {
        self.init(periods: FloatBuffer(periods), patchRows: h, patchCols: w)
    }

    init(periods: FloatBuffer, patchRows h: Int, patchCols w: Int) {
        let p = periods.count, dh = 4 * p
        headDim = dh
        sin = FloatBuffer(count: h * w * dh)
        cos = FloatBuffer(count: h * w * dh)
        // arange(0.5, n) / n, then 2·c − 1, each rounded to float32 as torch does.
        func coords(_ n: Int) -> [Float] { (0..<n).map { 2 * ((Float($0) + 0.5) / Float(n)) - 1 } }
        let rows = coords(h), cols = coords(w)
        let twoPi = Float(2 * Double.pi)
        var angles = [Float](repeating: 0, count: 2 * p)
        for i in 0..<h {
            for j in 0..<w {
                for k in 0..<p {
                    angles[k] = twoPi * rows[i] / periods.pointer[k]
                    angles[p + k] = twoPi * cols[j] / periods.pointer[k]
                }
                let s = sin.pointer + (i * w + j) * dh, c = cos.pointer + (i * w + j) * dh
                for k in 0..<(2 * p) {
                    let sk = Foundation.sin(angles[k]), ck = Foundation.cos(angles[k])
                    s[k] = sk; s[2 * p + k] = sk
                    c[k] = ck; c[2 * p + k] = ck
                }
            }
        }
    }

    /// The periods a model uses: `rope_embed.periods` as stored (the official buffer), else the
    /// official formula base^(2k / (D_head/2)) for k < D_head/4, the exponent in float32 and the
    /// power correctly rounded (torch's float32 `pow` may differ by one ulp).
    static func periods(store: TensorStore, binder: WeightBinder, config c: Config) throws -> FloatBuffer {
        let count = c.headDim / 4
        if store[HubNames.ropePeriods] != nil {
            let stored = try binder.bind(HubNames.ropePeriods, [count])
            for k in 0..<count where !(stored.pointer[k].isFinite && stored.pointer[k] > 0) {
                throw DINOv2Error.invalidWeight(name: HubNames.ropePeriods, reason: "period \(k) is \(stored.pointer[k]), expected a positive number")
            }
            return stored
        }
        let out = FloatBuffer(count: count)
        let base = c.architecture.ropeBase
        for k in 0..<count {
            let exponent = Float(2 * k) / Float(c.headDim / 2)
            out.pointer[k] = Float(Foundation.pow(base, Double(exponent)))
        }
        return out
    }

    /// The periods `periods(store:binder:config:)` gives, for an exporter that computes the
    /// angles in its own graph.
    public static func periods(hubStore store: TensorStore, config c: Config) throws -> [Float] {
        try periods(store: store, binder: WeightBinder(store: store), config: c).array()
    }

    /// The (h·w, D_head) sin and cos tables, row-major, for an exporter that bakes them.
    public static func tables(periods: [Float], patchRows h: Int, patchCols w: Int) -> (sin: [Float], cos: [Float]) {
        let t = RotaryPositions(periods: FloatBuffer(periods), patchRows: h, patchCols: w)
        return (t.sin.array(), t.cos.array())
    }

    /// Rotates the queries and keys of the patch tokens of `batch` images in a (rows, 3D) qkv
    /// buffer in place: for each head, x·cos + rotate_half(x)·sin, rotate_half(x) = (−x₂, x₁) of
    /// the head's two halves.
    public func apply(qkv: UnsafeMutablePointer<Float>, batch: Int, tokens: Int, prefix: Int, heads: Int,
                      parallelism: Parallelism) {
        rotate(qkv, transposed: false, batch: batch, tokens: tokens, prefix: prefix, heads: heads, parallelism: parallelism)
    }

    /// The backward of `apply` on a (rows, 3D) gradient in place: the rotation is linear,
    /// y = x·cos + rotate_half(x)·sin, so dx is its transpose applied to dy:
    /// dx = dy·cos + rotate_halfᵀ(dy·sin), rotate_halfᵀ(z) = (z₂, −z₁) — i.e. for k < D_head/2,
    /// dx_k = dy_k·cos_k + dy_{k+½}·sin_{k+½} and dx_{k+½} = dy_{k+½}·cos_{k+½} − dy_k·sin_k
    /// (the rotation by −angle, as the halves share their angles). Values (the third part) and the
    /// prefix tokens are untouched, as in the forward.
    public func applyTranspose(gradient: UnsafeMutablePointer<Float>, batch: Int, tokens: Int, prefix: Int, heads: Int,
                               parallelism: Parallelism) {
        rotate(gradient, transposed: true, batch: batch, tokens: tokens, prefix: prefix, heads: heads,
               parallelism: parallelism)
    }

    /// One walk over the q and k of the patch rows for both directions, so the forward and its
    /// transpose cannot disagree on which elements they touch.
    private func rotate(_ qkv: UnsafeMutablePointer<Float>, transposed: Bool, batch: Int, tokens: Int, prefix: Int,
                        heads: Int, parallelism: Parallelism) {
        let dh = headDim, half = dh / 2, d = heads * dh, patches = tokens - prefix
        parallelForDynamic(batch * patches, chunk: 64, parallelism) { range, _ in
            var x = [Float](repeating: 0, count: dh)
            for item in range {
                let b = item / patches, n = item % patches
                let row = qkv + (b * tokens + prefix + n) * 3 * d
                let s = sin.pointer + n * dh, c = cos.pointer + n * dh
                for part in 0..<2 {  // q, then k
                    for h in 0..<heads {
                        let v = row + part * d + h * dh
                        for k in 0..<dh { x[k] = v[k] }
                        if transposed {
                            for k in 0..<half { v[k] = x[k] * c[k] + x[half + k] * s[half + k] }
                            for k in half..<dh { v[k] = x[k] * c[k] + (-x[k - half]) * s[k - half] }
                        } else {
                            for k in 0..<half { v[k] = x[k] * c[k] + (-x[half + k]) * s[k] }
                            for k in half..<dh { v[k] = x[k] * c[k] + x[k - half] * s[k] }
                        }
                    }
                }
            }
        }
    }
}

extension Model {
    /// The RoPE tables for this grid, from the workspace's cache when it has them.
    func rotaryPositions(patchRows h: Int, patchCols w: Int, workspace ws: Workspace) -> RotaryPositions? {
        guard let periods = parameters.ropePeriods else { return nil }
        if let cached = ws.rotaryCache, cached.source === periods, cached.patchRows == h, cached.patchCols == w {
            return cached.table
        }
        let table = RotaryPositions(periods: periods, patchRows: h, patchCols: w)
        ws.rotaryCache = (periods, h, w, table)
        return table
    }
}
