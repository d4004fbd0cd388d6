import Formats
import TensorStore

/// Seeded random weights in the hub layout, for benchmarks and tests without a checkpoint: a
/// released variant's shape (`variants`) or any other. Values follow the recipe of
/// Scripts/dinokit_ref (LayerNorm weights near 1, LayerScale 0.5-0.8, linear weights
/// ~ 1/√fan-in, small biases) so activations stay in range. DINOv3 shapes (hub/backbones.py)
/// get storage tokens, the key-bias mask (when they have a qkv bias) and separate SwiGLU
/// `w1`/`w2`, and no position table; untied ones a `cls_norm`.
public enum RandomWeights {
    public struct VariantShape: Sendable {
        public var dim: Int, depth: Int, hidden: Int, swiglu: Bool, registers: Int
        public var family: Config.Family
        /// DINOv3 7B has no qkv bias (and so no bias mask).
        public var qkvBias: Bool
        /// DINOv3 `untie_cls_and_patch_norms`: a `cls_norm` beside `norm`.
        public var untiedNorm: Bool
        /// Recorded as `num_heads`; nil for D/64.
        public var heads: Int?

        public init(dim: Int, depth: Int, hidden: Int, swiglu: Bool, registers: Int, family: Config.Family = .dinov2,
                    qkvBias: Bool = true, untiedNorm: Bool = false, heads: Int? = nil) {
            self.dim = dim
            self.depth = depth
            self.hidden = hidden
            self.swiglu = swiglu
            self.registers = registers
            self.family = family
            self.qkvBias = qkvBias
            self.untiedNorm = untiedNorm
            self.heads = heads
        }
    }

    /// The released variants by hub name (DINOv2 with and without registers; DINOv3 up to 7B/16).
    public static let variants: [String: VariantShape] = {
        var v: [String: VariantShape] = [:]
        for (name, dim, depth, hidden, swiglu) in [("dinov2_vits14", 384, 12, 1536, false), ("dinov2_vitb14", 768, 12, 3072, false),
                                                   ("dinov2_vitl14", 1024, 24, 4096, false), ("dinov2_vitg14", 1536, 40, 4096, true)] {
            v[name] = VariantShape(dim: dim, depth: depth, hidden: hidden, swiglu: swiglu, registers: 0)
            v[name + "_reg"] = VariantShape(dim: dim, depth: depth, hidden: hidden, swiglu: swiglu, registers: 4)
        }
        for (name, dim, depth, hidden, swiglu) in [("dinov3_vits16", 384, 12, 1536, false), ("dinov3_vits16plus", 384, 12, 1536, true),
                                                   ("dinov3_vitb16", 768, 12, 3072, false), ("dinov3_vitl16", 1024, 24, 4096, false),
                                                   ("dinov3_vitl16plus", 1024, 24, 4096, true), ("dinov3_vith16plus", 1280, 32, 5120, true)] {
            v[name] = VariantShape(dim: dim, depth: depth, hidden: hidden, swiglu: swiglu, registers: 4, family: .dinov3)
        }
        v["dinov3_vit7b16"] = VariantShape(dim: 4096, depth: 40, hidden: 8192, swiglu: true, registers: 4, family: .dinov3,
                                    qkvBias: false, untiedNorm: true)
        return v
    }()

    /// Hub-named Float32 weights of `s`, the same for the same shape on every run.
    public static func hubStore(_ s: VariantShape) throws -> TensorStore {
        let v3 = s.family == .dinov3
        let d = s.dim, grid = 37, patch = v3 ? 16 : 14
        var store = TensorStore()
        var seed: UInt32 = 1
        func add(_ name: String, _ shape: [Int], _ fill: (inout SyntheticInput) -> Float) throws {
            var g = SyntheticInput(seed: seed)
            seed &+= 1
            let count = shape.reduce(1, *)
            var values = [Float](repeating: 0, count: count)
            for i in 0..<count { values[i] = fill(&g) }
            try store.insert(Tensor(shape: Shape(shape), floats: values), named: name)
        }
        let small: (inout SyntheticInput) -> Float = { 0.05 * $0.nextValue() }
        let nearOne: (inout SyntheticInput) -> Float = { 1 + 0.05 * $0.nextValue() }
        let layerScale: (inout SyntheticInput) -> Float = { 0.65 + 0.075 * $0.nextValue() }
        func linear(_ fanIn: Int) -> (inout SyntheticInput) -> Float {
            let scale = Float(0.5 / Double(fanIn).squareRoot())  // LCG values have variance ~4/3
            return { scale * $0.nextValue() }
        }
        try add("cls_token", [1, 1, d], small)
        if v3 {
            try add("storage_tokens", [1, s.registers, d], small)
        } else {
            try add("pos_embed", [1, 1 + grid * grid, d], small)
            if s.registers > 0 { try add("register_tokens", [1, s.registers, d], small) }
        }
        try add("mask_token", [1, d], small)
        try add("patch_embed.proj.weight", [d, 3, patch, patch], linear(3 * patch * patch))
        try add("patch_embed.proj.bias", [d], small)
        for i in 0..<s.depth {
            let b = "blocks.\(i)."
            try add(b + "norm1.weight", [d], nearOne)
            try add(b + "norm1.bias", [d], small)
            try add(b + "attn.qkv.weight", [3 * d, d], linear(d))
            if s.qkvBias {
                try add(b + "attn.qkv.bias", [3 * d], small)
                if v3 {  // LinearKMaskedBias: 1 on q and v, 0 on k
                    let mask = (0..<(3 * d)).map { $0 >= d && $0 < 2 * d ? Float(0) : 1 }
                    try store.insert(Tensor(shape: [3 * d], floats: mask), named: b + "attn.qkv.bias_mask")
                }
            }
            try add(b + "attn.proj.weight", [d, d], linear(d))
            try add(b + "attn.proj.bias", [d], small)
            try add(b + "ls1.gamma", [d], layerScale)
            try add(b + "norm2.weight", [d], nearOne)
            try add(b + "norm2.bias", [d], small)
            if s.swiglu && v3 {
                for w in ["w1", "w2"] {
                    try add(b + "mlp.\(w).weight", [s.hidden, d], linear(d))
                    try add(b + "mlp.\(w).bias", [s.hidden], small)
                }
                try add(b + "mlp.w3.weight", [d, s.hidden], linear(s.hidden))
                try add(b + "mlp.w3.bias", [d], small)
            } else if s.swiglu {
                try add(b + "mlp.w12.weight", [2 * s.hidden, d], linear(d))
                try add(b + "mlp.w12.bias", [2 * s.hidden], small)
                try add(b + "mlp.w3.weight", [d, s.hidden], linear(s.hidden))
                try add(b + "mlp.w3.bias", [d], small)
            } else {
                try add(b + "mlp.fc1.weight", [s.hidden, d], linear(d))
                try add(b + "mlp.fc1.bias", [s.hidden], small)
                try add(b + "mlp.fc2.weight", [d, s.hidden], linear(s.hidden))
                try add(b + "mlp.fc2.bias", [d], small)
            }
            try add(b + "ls2.gamma", [d], layerScale)
        }
        try add("norm.weight", [d], nearOne)
        try add("norm.bias", [d], small)
        if s.untiedNorm {
            try add("cls_norm.weight", [d], nearOne)
            try add("cls_norm.bias", [d], small)
        }
        store.metadata["num_heads"] = String(s.heads ?? d / 64)
        return store
    }
}
