import Kernels

/// A `DINOHead`'s sizes (dino_head.py): `nlayers` Linear layers with GELU between them
/// (in → hidden → … → bottleneck; one layer maps in → bottleneck directly), then the
/// L2-normalised bottleneck and the weight-normed, bias-free `last_layer` (bottleneck → out).
public struct HeadConfig: Sendable, Equatable {
    public var inDim: Int
    public var outDim: Int
    public var hiddenDim: Int
    public var bottleneckDim: Int
    public var layers: Int

    public init(inDim: Int, outDim: Int, hiddenDim: Int, bottleneckDim: Int, layers: Int) {
        self.inDim = inDim
        self.outDim = outDim
        self.hiddenDim = hiddenDim
        self.bottleneckDim = bottleneckDim
        self.layers = Swift.max(layers, 1)
    }

    /// (in, out) of each MLP Linear.
    public var linearShapes: [(inFeatures: Int, outFeatures: Int)] {
        if layers == 1 { return [(inDim, bottleneckDim)] }
        var s = [(inDim, hiddenDim)]
        for _ in 0..<(layers - 2) { s.append((hiddenDim, hiddenDim)) }
        s.append((hiddenDim, bottleneckDim))
        return s
    }

    /// State-dict prefixes of the MLP Linears: `mlp.` for a single Linear, else `mlp.<2i>.`
    /// (the Sequential's odd indices are the GELUs).
    public var linearPrefixes: [String] {
        layers == 1 ? ["mlp."] : (0..<layers).map { "mlp.\(2 * $0)." }
    }
}

/// The head's tensors in registration order: the MLP, then `last_layer.weight_g` (out, 1) and
/// `last_layer.weight_v` (out, bottleneck) of `weight_norm(Linear(bottleneck, out, bias=False))`.
public func headLayout(_ h: HeadConfig) -> ParameterLayout {
    var e: [(String, [Int])] = []
    for (prefix, s) in zip(h.linearPrefixes, h.linearShapes) {
        e.append((prefix + "weight", [s.outFeatures, s.inFeatures]))
        e.append((prefix + "bias", [s.outFeatures]))
    }
    e.append(("last_layer.weight_g", [h.outDim, 1]))
    e.append(("last_layer.weight_v", [h.outDim, h.bottleneckDim]))
    return ParameterLayout(e)
}

/// A head's tensors as pointers into a parameter or gradient block.
public struct HeadTensors {
    public var weights: [UnsafeMutablePointer<Float>]
    public var biases: [UnsafeMutablePointer<Float>]
    public var weightG: UnsafeMutablePointer<Float>   // (out)
    public var weightV: UnsafeMutablePointer<Float>   // (out, bottleneck)

    public init(_ b: ParameterBlock, config h: HeadConfig) {
        weights = h.linearPrefixes.map { b.pointer($0 + "weight") }
        biases = h.linearPrefixes.map { b.pointer($0 + "bias") }
        weightG = b.pointer("last_layer.weight_g")
        weightV = b.pointer("last_layer.weight_v")
    }
}
