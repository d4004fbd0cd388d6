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

        init(_ b: BlockParameters, config c: Config, precision: Precision) {
            let d = c.embedDim
            let fc1Rows = c.ffn == .swiglu ? 2 * c.ffnHidden : c.ffnHidden
            func pack(_ w: FloatBuffer, _ out: Int, _ inp: Int) -> PackedLinearWeights {
                PackedLinearWeights(w, outFeatures: out, inFeatures: inp, precision: precision)
            }
            qkv = pack(b.qkvWeight, 3 * d, d)
            proj = pack(b.projWeight, d, d)
            fc1 = pack(b.fc1Weight, fc1Rows, d)
            fc2 = pack(b.fc2Weight, d, c.ffnHidden)
        }

        var byteCount: Int { qkv.byteCount + proj.byteCount + fc1.byteCount + fc2.byteCount }
    }

    /// The patch embedding as a linear layer (D, C·p·p).
    let patch: PackedLinearWeights
    let blocks: [Block]
    /// f32, or bf16: every linear layer (patch embedding included) rounded to bf16 once here.
    /// Weights read from a bf16 file were widened exactly, so rounding gives back their bits.
    let precision: Precision

    init(_ p: Parameters, config c: Config, precision: Precision = .f32) {
        self.precision = precision
        patch = PackedLinearWeights(p.patchWeight, outFeatures: c.embedDim, inFeatures: c.inChannels * c.patchSize * c.patchSize,
                                    precision: precision)
        blocks = p.blocks.map { Block($0, config: c, precision: precision) }
    }

    /// `blocks` beside an already packed patch embedding (a streamed model's block, sharing its stem's).
    init(patch: PackedLinearWeights, blocks: [Block], precision: Precision) {
        self.patch = patch
        self.blocks = blocks
        self.precision = precision
    }

    var byteCount: Int { blocks.reduce(patch.byteCount) { $0 + $1.byteCount } }
}
