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
    }

    /// The patch embedding as a linear layer (D, C·p·p).
    let patch: PackedLinearWeights
    let blocks: [Block]
    /// f32, or bf16: every linear layer (patch embedding included) rounded to bf16 once here.
    /// Weights read from a bf16 file were widened exactly, so rounding gives back their bits.
    let precision: Precision

    init(_ p: Parameters, config c: Config, precision: Precision = .f32) {
        let d = c.embedDim
        self.precision = precision
        func pack(_ w: FloatBuffer, _ out: Int, _ inp: Int) -> PackedLinearWeights {
            PackedLinearWeights(w, outFeatures: out, inFeatures: inp, precision: precision)
        }
        patch = pack(p.patchWeight, d, c.inChannels * c.patchSize * c.patchSize)
        let fc1Rows = c.ffn == .swiglu ? 2 * c.ffnHidden : c.ffnHidden
        blocks = p.blocks.map { b in
            Block(qkv: pack(b.qkvWeight, 3 * d, d), proj: pack(b.projWeight, d, d), fc1: pack(b.fc1Weight, fc1Rows, d),
                  fc2: pack(b.fc2Weight, d, c.ffnHidden))
        }
    }

    var byteCount: Int {
        blocks.reduce(patch.byteCount) { $0 + $1.qkv.byteCount + $1.proj.byteCount + $1.fc1.byteCount + $1.fc2.byteCount }
    }
}
