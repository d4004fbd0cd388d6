import DINOv2
import Kernels

/// The backbone's tensors in the official registration order (`DinoVisionTransformer`'s own
/// parameters, then `patch_embed`, `blocks` (norm1, attn.qkv, attn.proj, ls1, norm2, mlp, ls2),
/// `norm`), with their state-dict shapes. The mask token is always there: training needs it.
public func backboneLayout(_ c: Config) -> ParameterLayout {
    let d = c.embedDim, p = c.patchSize, m = c.positionGrid
    var e: [(String, [Int])] = [("cls_token", [1, 1, d]), ("pos_embed", [1, 1 + m * m, d])]
    if c.registerTokens > 0 { e.append(("register_tokens", [1, c.registerTokens, d])) }
    e.append(("mask_token", [1, d]))
    e.append(("patch_embed.proj.weight", [d, c.inChannels, p, p]))
    e.append(("patch_embed.proj.bias", [d]))
    let (fc1, fc2) = c.ffn == .swiglu ? ("mlp.w12", "mlp.w3") : ("mlp.fc1", "mlp.fc2")
    let fc1Rows = c.ffn == .swiglu ? 2 * c.ffnHidden : c.ffnHidden
    for i in 0..<c.depth {
        let b = "blocks.\(i)."
        e += [(b + "norm1.weight", [d]), (b + "norm1.bias", [d]),
              (b + "attn.qkv.weight", [3 * d, d]), (b + "attn.qkv.bias", [3 * d]),
              (b + "attn.proj.weight", [d, d]), (b + "attn.proj.bias", [d])]
        if c.layerScale { e.append((b + "ls1.gamma", [d])) }
        e += [(b + "norm2.weight", [d]), (b + "norm2.bias", [d]),
              (b + fc1 + ".weight", [fc1Rows, d]), (b + fc1 + ".bias", [fc1Rows]),
              (b + fc2 + ".weight", [d, c.ffnHidden]), (b + fc2 + ".bias", [d])]
        if c.layerScale { e.append((b + "ls2.gamma", [d])) }
    }
    e += [("norm.weight", [d]), ("norm.bias", [d])]
    return ParameterLayout(e)
}

/// One block's tensors as pointers into a parameter (or gradient) block. Linear weights are
/// (out, in); `fc1`/`fc2` are `w12`/`w3` in SwiGLU blocks.
public struct BlockTensors {
    public var norm1Weight, norm1Bias: UnsafeMutablePointer<Float>
    public var qkvWeight, qkvBias: UnsafeMutablePointer<Float>
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
    public var posEmbed: UnsafeMutablePointer<Float>        // (1 + M², D)
    public var registerTokens: UnsafeMutablePointer<Float>? // (R, D)
    public var maskToken: UnsafeMutablePointer<Float>       // (D)
    public var patchWeight: UnsafeMutablePointer<Float>     // (D, C·p·p)
    public var patchBias: UnsafeMutablePointer<Float>       // (D)
    public var blocks: [BlockTensors]
    public var normWeight, normBias: UnsafeMutablePointer<Float>

    public init(_ b: ParameterBlock, config c: Config) {
        clsToken = b.pointer("cls_token")
        posEmbed = b.pointer("pos_embed")
        registerTokens = c.registerTokens > 0 ? b.pointer("register_tokens") : nil
        maskToken = b.pointer("mask_token")
        patchWeight = b.pointer("patch_embed.proj.weight")
        patchBias = b.pointer("patch_embed.proj.bias")
        let (fc1, fc2) = c.ffn == .swiglu ? ("mlp.w12", "mlp.w3") : ("mlp.fc1", "mlp.fc2")
        blocks = (0..<c.depth).map { i in
            func p(_ s: String) -> UnsafeMutablePointer<Float> { b.pointer("blocks.\(i).\(s)") }
            return BlockTensors(
                norm1Weight: p("norm1.weight"), norm1Bias: p("norm1.bias"),
                qkvWeight: p("attn.qkv.weight"), qkvBias: p("attn.qkv.bias"),
                projWeight: p("attn.proj.weight"), projBias: p("attn.proj.bias"),
                ls1: c.layerScale ? p("ls1.gamma") : nil,
                norm2Weight: p("norm2.weight"), norm2Bias: p("norm2.bias"),
                fc1Weight: p(fc1 + ".weight"), fc1Bias: p(fc1 + ".bias"),
                fc2Weight: p(fc2 + ".weight"), fc2Bias: p(fc2 + ".bias"),
                ls2: c.layerScale ? p("ls2.gamma") : nil)
        }
        normWeight = b.pointer("norm.weight")
        normBias = b.pointer("norm.bias")
    }
}
