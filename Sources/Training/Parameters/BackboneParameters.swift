import DINOv2
import Kernels

/// The backbone's trained tensors in the official registration order (`DinoVisionTransformer`'s
/// own parameters, then `patch_embed`, `blocks` (norm1, attn.qkv, attn.proj, ls1, norm2, mlp, ls2),
/// `norm`), with their state-dict shapes. The mask token is always there: training needs it.
/// DINOv3 (dinov3/models/vision_transformer.py): storage tokens instead of a position table and
/// registers, `cls_norm` after `norm` when untied; its buffers (`rope_embed.periods`,
/// `attn.qkv.bias_mask`) are not trained and live in `BackboneBuffers`.
public func backboneLayout(_ c: Config) -> ParameterLayout {
    let d = c.embedDim, p = c.patchSize, m = c.positionGrid, v3 = c.family == .dinov3
    var e: [(String, [Int])] = [("cls_token", [1, 1, d])]
    if !v3 { e.append(("pos_embed", [1, 1 + m * m, d])) }
    if c.registerTokens > 0 { e.append((v3 ? HubNames.storageTokens : HubNames.registerTokens, [1, c.registerTokens, d])) }
    e.append(("mask_token", [1, d]))
    e.append(("patch_embed.proj.weight", [d, c.inChannels, p, p]))
    e.append(("patch_embed.proj.bias", [d]))
    let h = c.ffnHidden
    for i in 0..<c.depth {
        let b = "blocks.\(i)."
        e += [(b + "norm1.weight", [d]), (b + "norm1.bias", [d]),
              (b + "attn.qkv.weight", [3 * d, d]), (b + "attn.qkv.bias", [3 * d]),
              (b + "attn.proj.weight", [d, d]), (b + "attn.proj.bias", [d])]
        if c.layerScale { e.append((b + "ls1.gamma", [d])) }
        e += [(b + "norm2.weight", [d]), (b + "norm2.bias", [d])]
        let names = ffnNames(c)
        if v3 && c.ffn == .swiglu {
            // The official w1, w2 as separate tensors, but weights before biases so that
            // [w1; w2] is one contiguous (2h, D) matrix and [b1; b2] one (2h) vector: the fused
            // `w12` the block's forward and backward run on (silu(w1 x) · w2 x).
            e += [(b + "mlp.w1.weight", [h, d]), (b + "mlp.w2.weight", [h, d]),
                  (b + "mlp.w1.bias", [h]), (b + "mlp.w2.bias", [h])]
        } else {
            let fc1Rows = c.ffn == .swiglu ? 2 * h : h
            e += [(b + names.fc1 + ".weight", [fc1Rows, d]), (b + names.fc1 + ".bias", [fc1Rows])]
        }
        e += [(b + names.fc2 + ".weight", [d, h]), (b + names.fc2 + ".bias", [d])]
        if c.layerScale { e.append((b + "ls2.gamma", [d])) }
    }
    e += [("norm.weight", [d]), ("norm.bias", [d])]
    if untiedClassNorm(c) { e += [(HubNames.classNormWeight, [d]), (HubNames.classNormBias, [d])] }
    return ParameterLayout(e)
}

/// The state-dict names of a block's first FFN layer (whose weight the forward reads as one
/// (fc1 rows, D) matrix: `fc1`, `w12`, or DINOv3's `w1` followed by `w2`) and of its second.
func ffnNames(_ c: Config) -> (fc1: String, fc2: String) {
    switch (c.ffn, c.family) {
    case (.mlp, _): return ("mlp.fc1", "mlp.fc2")
    case (.swiglu, .dinov2): return ("mlp.w12", "mlp.w3")
    case (.swiglu, .dinov3): return ("mlp.w1", "mlp.w3")
    }
}

/// Whether the cls and storage tokens have their own final norm (DINOv3 `cls_norm`).
func untiedClassNorm(_ c: Config) -> Bool { c.family == .dinov3 && c.architecture.untiedClassNorm }

/// One block's tensors as pointers into a parameter (or gradient) block. Linear weights are
/// (out, in); `fc1`/`fc2` are `w12`/`w3` in SwiGLU blocks.
public struct BlockTensors {
    public var norm1Weight, norm1Bias: UnsafeMutablePointer<Float>
    public var qkvWeight, qkvBias: UnsafeMutablePointer<Float>
    /// DINOv3's `bias_mask` (a buffer: set on the parameters' view only, nil on gradients'):
    /// the attention adds qkvBias · mask.
    public var qkvBiasMask: UnsafePointer<Float>?
    public var projWeight, projBias: UnsafeMutablePointer<Float>
    public var ls1: UnsafeMutablePointer<Float>?
    public var norm2Weight, norm2Bias: UnsafeMutablePointer<Float>
    public var fc1Weight, fc1Bias: UnsafeMutablePointer<Float>
    public var fc2Weight, fc2Bias: UnsafeMutablePointer<Float>
    public var ls2: UnsafeMutablePointer<Float>?
}

/// The backbone's tensors as pointers (llm.c's `ParameterTensors`): the same struct views the
/// parameters and their gradients.
public struct BackboneTensors {
    public var clsToken: UnsafeMutablePointer<Float>        // (D)
    public var posEmbed: UnsafeMutablePointer<Float>?       // (1 + M², D); DINOv2 only
    public var registerTokens: UnsafeMutablePointer<Float>? // (R, D): registers or storage tokens
    public var maskToken: UnsafeMutablePointer<Float>       // (D)
    public var patchWeight: UnsafeMutablePointer<Float>     // (D, C·p·p)
    public var patchBias: UnsafeMutablePointer<Float>       // (D)
    public var blocks: [BlockTensors]
    public var normWeight, normBias: UnsafeMutablePointer<Float>
    /// DINOv3 untied norms: `cls_norm` on the cls and storage tokens.
    public var classNormWeight, classNormBias: UnsafeMutablePointer<Float>?

    /// `buffers`: the model's buffers (DINOv3 bias masks), given for the parameters' view.
    public init(_ b: ParameterBlock, config c: Config, buffers: BackboneBuffers? = nil) {
        let v3 = c.family == .dinov3
        clsToken = b.pointer("cls_token")
        posEmbed = v3 ? nil : b.pointer("pos_embed")
        registerTokens = c.registerTokens > 0 ? b.pointer(v3 ? HubNames.storageTokens : HubNames.registerTokens) : nil
        maskToken = b.pointer("mask_token")
        patchWeight = b.pointer("patch_embed.proj.weight")
        patchBias = b.pointer("patch_embed.proj.bias")
        let (fc1, fc2) = ffnNames(c)
        blocks = (0..<c.depth).map { i in
            func p(_ s: String) -> UnsafeMutablePointer<Float> { b.pointer("blocks.\(i).\(s)") }
            return BlockTensors(
                norm1Weight: p("norm1.weight"), norm1Bias: p("norm1.bias"),
                qkvWeight: p("attn.qkv.weight"), qkvBias: p("attn.qkv.bias"),
                qkvBiasMask: buffers?.qkvBiasMasks.map { UnsafePointer($0[i].pointer) },
                projWeight: p("attn.proj.weight"), projBias: p("attn.proj.bias"),
                ls1: c.layerScale ? p("ls1.gamma") : nil,
                norm2Weight: p("norm2.weight"), norm2Bias: p("norm2.bias"),
                fc1Weight: p(fc1 + ".weight"), fc1Bias: p(fc1 + ".bias"),
                fc2Weight: p(fc2 + ".weight"), fc2Bias: p(fc2 + ".bias"),
                ls2: c.layerScale ? p("ls2.gamma") : nil)
        }
        normWeight = b.pointer("norm.weight")
        normBias = b.pointer("norm.bias")
        classNormWeight = untiedClassNorm(c) ? b.pointer(HubNames.classNormWeight) : nil
        classNormBias = untiedClassNorm(c) ? b.pointer(HubNames.classNormBias) : nil
    }
}
