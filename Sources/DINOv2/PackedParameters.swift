import Kernels

/// The linear weights of a model packed once for the GEMM micro-kernel (`PackedLinearWeights`),
/// next to the plain `Parameters` that training and export read. Packing copies the weights once
/// at load (≈ the size of the linear weights, e.g. 85 MB for ViT-S/14); the plain copy stays, so
/// gradients and optimiser state can mirror `Parameters`.
final class PackedParameters: Sendable {
    struct Block: Sendable {
        let qkv: PackedLinearWeights
        let proj: PackedLinearWeights
        let fc1: PackedLinearWeights
        let fc2: PackedLinearWeights

        init(_ b: BlockParameters, config c: Config) {
            let d = c.embedDim
            let fc1Rows = c.ffn == .swiglu ? 2 * c.ffnHidden : c.ffnHidden
            qkv = PackedLinearWeights(b.qkvWeight, outFeatures: 3 * d, inFeatures: d)
            proj = PackedLinearWeights(b.projWeight, outFeatures: d, inFeatures: d)
            fc1 = PackedLinearWeights(b.fc1Weight, outFeatures: fc1Rows, inFeatures: d)
            fc2 = PackedLinearWeights(b.fc2Weight, outFeatures: d, inFeatures: c.ffnHidden)
        }

        var byteCount: Int { qkv.byteCount + proj.byteCount + fc1.byteCount + fc2.byteCount }
    }

    /// The patch embedding as a linear layer (D, C·p·p).
    let patch: PackedLinearWeights
    let blocks: [Block]

    init(_ p: Parameters, config c: Config) {
        patch = PackedLinearWeights(p.patchWeight, outFeatures: c.embedDim, inFeatures: c.inChannels * c.patchSize * c.patchSize)
        blocks = p.blocks.map { Block($0, config: c) }
    }

    /// `blocks` beside an already packed patch embedding (a streamed model's block, sharing its stem's).
    init(patch: PackedLinearWeights, blocks: [Block]) {
        self.patch = patch
        self.blocks = blocks
    }

    var byteCount: Int { blocks.reduce(patch.byteCount) { $0 + $1.byteCount } }
}
