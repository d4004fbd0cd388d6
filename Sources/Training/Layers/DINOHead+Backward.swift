import Foundation
import Kernels

// DINOHead (dino_head.py; spec §2.1): MLP (Linear, GELU, …, Linear) → L2-normalise → weight-normed
// Linear without bias. Token-wise, so one pass over concatenated rows equals separate passes.

/// What a head's forward keeps for its backward, for up to `capacity` rows. The caller writes
/// the input rows into `input`.
public final class HeadActivations {
    public let config: HeadConfig
    public let capacity: Int
    /// (rows, in).
    public let input: FloatBuffer
    /// Per MLP Linear: its output (rows, width); and for all but the last, GELU of it.
    public let linearOut: [FloatBuffer]
    public let geluOut: [FloatBuffer]
    /// (rows): max(‖z‖, eps) of the bottleneck z = linearOut.last.
    public let norms: FloatBuffer
    /// (rows, bottleneck): z / max(‖z‖, eps).
    public let normalized: FloatBuffer
    /// (out): ‖v_k‖; (out, bottleneck): W = v · (g / ‖v‖), rebuilt by every forward.
    public let vNorms: FloatBuffer
    public let weight: FloatBuffer
    /// (rows, out).
    public let logits: FloatBuffer

    public init(config h: HeadConfig, capacity: Int) {
        config = h
        self.capacity = capacity
        input = FloatBuffer(count: capacity * h.inDim)
        let shapes = h.linearShapes
        linearOut = shapes.map { FloatBuffer(count: capacity * $0.outFeatures) }
        geluOut = shapes.dropLast().map { FloatBuffer(count: capacity * $0.outFeatures) }
        norms = FloatBuffer(count: capacity)
        normalized = FloatBuffer(count: capacity * h.bottleneckDim)
        vNorms = FloatBuffer(count: h.outDim)
        weight = FloatBuffer(count: h.outDim * h.bottleneckDim)
        logits = FloatBuffer(count: capacity * h.outDim)
    }

    public var byteCount: Int {
        4 * ([input, norms, normalized, vNorms, weight, logits] + linearOut + geluOut).reduce(0) { $0 + $1.count }
    }
}

/// Scratch for a head's backward, for up to `capacity` rows.
public final class HeadGradScratch {
    public let capacity: Int
    /// (out, bottleneck): dL/dW of the weight-normed layer.
    public let dWeight: FloatBuffer
    /// (rows, widest): two ping-pong row buffers through the MLP.
    public let a: FloatBuffer, b: FloatBuffer

    public init(config h: HeadConfig, capacity: Int) {
        self.capacity = capacity
        dWeight = FloatBuffer(count: h.outDim * h.bottleneckDim)
        let widest = Swift.max(h.inDim, h.hiddenDim, h.bottleneckDim)
        a = FloatBuffer(count: capacity * widest)
        b = FloatBuffer(count: capacity * widest)
    }
}

/// `F.normalize(x, dim=-1, p=2, eps)`: x / max(‖x‖₂, eps) per row; `norms` keeps the divisor.
public func l2NormalizeForward(out: UnsafeMutablePointer<Float>, norms: UnsafeMutablePointer<Float>,
                               inp: UnsafePointer<Float>, rows: Int, cols: Int, eps: Float) {
    for r in 0..<rows {
        let x = inp + r * cols, y = out + r * cols
        var s = 0.0
        for i in 0..<cols { s += Double(x[i]) * Double(x[i]) }
        let n = Swift.max(Float(s.squareRoot()), eps)
        norms[r] = n
        for i in 0..<cols { y[i] = x[i] / n }
    }
}

/// Backward of `l2NormalizeForward`: dx = (dy − y·(dy·y)) / n, or dy / eps where the norm was
/// clamped (there the divisor is a constant). `dinp` may equal `dout`.
public func l2NormalizeBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, out: UnsafePointer<Float>,
                                norms: UnsafePointer<Float>, inp: UnsafePointer<Float>, rows: Int, cols: Int, eps: Float) {
    for r in 0..<rows {
        let y = out + r * cols, g = dout + r * cols, dx = dinp + r * cols
        let n = norms[r]
        var normSq = 0.0
        for i in 0..<cols { normSq += Double(inp[r * cols + i]) * Double(inp[r * cols + i]) }
        if Float(normSq.squareRoot()) < eps {
            for i in 0..<cols { dx[i] = g[i] / n }
            continue
        }
        var dot = 0.0
        for i in 0..<cols { dot += Double(g[i]) * Double(y[i]) }
        let d = Float(dot)
        for i in 0..<cols { dx[i] = (g[i] - y[i] * d) / n }
    }
}

/// `torch._weight_norm(v, g, dim=0)`: W[k, :] = v[k, :] · (g[k] / ‖v[k, :]‖).
public func weightNormForward(weight: UnsafeMutablePointer<Float>, vNorms: UnsafeMutablePointer<Float>,
                              g: UnsafePointer<Float>, v: UnsafePointer<Float>, rows: Int, cols: Int,
                              parallelism: Parallelism = .serial) {
    parallelFor(rows, pieces(rows, work: rows * cols * 2, minimum: 64, parallelism)) { range in
        for k in range {
            let vr = v + k * cols, w = weight + k * cols
            var s = 0.0
            for i in 0..<cols { s += Double(vr[i]) * Double(vr[i]) }
            let n = Float(s.squareRoot())
            vNorms[k] = n
            let scale = g[k] / n
            for i in 0..<cols { w[i] = vr[i] * scale }
        }
    }
}

/// Backward of `weightNormForward`: dg[k] += dW[k]·v[k] / ‖v[k]‖,
/// dv[k] += (g[k] / ‖v[k]‖) · (dW[k] − v[k] · dg_k / ‖v[k]‖).
public func weightNormBackward(dg: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                               dweight: UnsafePointer<Float>, g: UnsafePointer<Float>, v: UnsafePointer<Float>,
                               vNorms: UnsafePointer<Float>, rows: Int, cols: Int, parallelism: Parallelism) {
    parallelFor(rows, pieces(rows, work: rows * cols * 4, minimum: 64, parallelism)) { range in
        for k in range {
            let vr = v + k * cols, dw = dweight + k * cols, dvr = dv + k * cols
            let n = vNorms[k]
            var dot = 0.0
            for i in 0..<cols { dot += Double(dw[i]) * Double(vr[i]) }
            let dgk = Float(dot) / n
            dg[k] += dgk
            let s = g[k] / n, t = dgk / n
            for i in 0..<cols { dvr[i] += s * (dw[i] - vr[i] * t) }
        }
    }
}

/// The bottleneck's normalisation epsilon for float32 (1e-6 is for fp16).
public let headNormalizeEps: Float = 1e-12

/// Forward over `rows` rows already in `acts.input`; logits land in `acts.logits`.
public func dinoHeadForward(_ w: HeadTensors, _ acts: HeadActivations, rows: Int, parallelism: Parallelism) {
    let h = acts.config
    precondition(rows <= acts.capacity, "head activations hold \(acts.capacity) rows, not \(rows)")
    let shapes = h.linearShapes
    var x = UnsafePointer(acts.input.pointer)
    for (i, s) in shapes.enumerated() {
        linearForward(out: acts.linearOut[i].pointer, inp: x, weight: w.weights[i], bias: w.biases[i], rows: rows,
                      inFeatures: s.inFeatures, outFeatures: s.outFeatures, parallelism: parallelism)
        if i < shapes.count - 1 {
            geluForward(out: acts.geluOut[i].pointer, inp: acts.linearOut[i].pointer, count: rows * s.outFeatures,
                        parallelism: parallelism)
            x = UnsafePointer(acts.geluOut[i].pointer)
        }
    }
    let bn = h.bottleneckDim
    l2NormalizeForward(out: acts.normalized.pointer, norms: acts.norms.pointer, inp: acts.linearOut[shapes.count - 1].pointer,
                       rows: rows, cols: bn, eps: headNormalizeEps)
    weightNormForward(weight: acts.weight.pointer, vNorms: acts.vNorms.pointer, g: w.weightG, v: w.weightV,
                      rows: h.outDim, cols: bn, parallelism: parallelism)
    linearForward(out: acts.logits.pointer, inp: acts.normalized.pointer, weight: acts.weight.pointer, bias: nil,
                  rows: rows, inFeatures: bn, outFeatures: h.outDim, parallelism: parallelism)
}

/// Backward from `dlogits` (rows, out): parameter gradients accumulate into `grads`; the input
/// gradient (rows, in) is written to `dinput`.
public func dinoHeadBackward(_ w: HeadTensors, _ grads: HeadTensors, _ acts: HeadActivations, _ scratch: HeadGradScratch,
                             dlogits: UnsafePointer<Float>, dinput: UnsafeMutablePointer<Float>, rows: Int,
                             parallelism: Parallelism) {
    let h = acts.config, bn = h.bottleneckDim, shapes = h.linearShapes
    guard rows > 0 else { return }
    let dW = scratch.dWeight.pointer
    dW.update(repeating: 0, count: h.outDim * bn)
    var g = scratch.a.pointer, other = scratch.b.pointer
    // Weight-normed last layer: dzn = dlogits·W, dW = dlogitsᵀ·zn.
    linearBackward(dinp: g, dweight: dW, dbias: nil, dout: dlogits, inp: acts.normalized.pointer,
                   weight: acts.weight.pointer, rows: rows, inFeatures: bn, outFeatures: h.outDim,
                   parallelism: parallelism)
    weightNormBackward(dg: grads.weightG, dv: grads.weightV, dweight: dW, g: w.weightG, v: w.weightV,
                       vNorms: acts.vNorms.pointer, rows: h.outDim, cols: bn, parallelism: parallelism)
    l2NormalizeBackward(dinp: g, dout: g, out: acts.normalized.pointer, norms: acts.norms.pointer,
                        inp: acts.linearOut[shapes.count - 1].pointer, rows: rows, cols: bn, eps: headNormalizeEps)
    for i in stride(from: shapes.count - 1, through: 0, by: -1) {
        let s = shapes[i]
        let inp = i == 0 ? UnsafePointer(acts.input.pointer) : UnsafePointer(acts.geluOut[i - 1].pointer)
        let target = i == 0 ? dinput : other
        linearBackward(dinp: target, dweight: grads.weights[i], dbias: grads.biases[i], dout: g, inp: inp,
                       weight: w.weights[i], rows: rows, inFeatures: s.inFeatures, outFeatures: s.outFeatures,
                       parallelism: parallelism)
        if i > 0 {
            geluBackward(dinp: other, dout: other, inp: acts.linearOut[i - 1].pointer, count: rows * s.inFeatures,
                         parallelism: parallelism)
            swap(&g, &other)
        }
    }
}
