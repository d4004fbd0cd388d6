import DINOv2
import Kernels
import TensorStore

/// A DINOv3 backbone's buffers: state-dict tensors that shape the forward but are not trained, so
/// they stay out of the parameter block (no gradient, no optimiser state) and are written back
/// as read, under their hub names, next to the trained tensors.
/// - `rope_embed.periods` (D_head / 4): the RoPE periods (`RotaryPositions`);
/// - `blocks.N.attn.qkv.bias_mask` (3D): `LinearKMaskedBias` adds bias · mask, so the key third
///   of the bias (mask 0) gets no gradient and keeps its stored values.
/// DINOv2 backbones have none (everything empty).
public final class BackboneBuffers: Sendable {
    /// nil for DINOv2.
    public let ropePeriods: [Float]?
    /// One per block; nil when the model has no masked key bias.
    public let qkvBiasMasks: [FloatBuffer]?
    /// Whether the periods came from the weights (then they are written back) or from the
    /// official formula (a layout without the buffer: HF, timm).
    let storedPeriods: Bool

    public init(hubStore store: TensorStore, config c: Config, file: String) throws {
        guard c.family == .dinov3 else {
            (ropePeriods, qkvBiasMasks, storedPeriods) = (nil, nil, false)
            return
        }
        ropePeriods = try RotaryPositions.periods(hubStore: store, config: c)
        storedPeriods = store[HubNames.ropePeriods] != nil
        guard c.architecture.qkvBias, c.architecture.maskedKeyBias else {
            qkvBiasMasks = nil
            return
        }
        qkvBiasMasks = try (0..<c.depth).map { i in
            let name = HubNames.block(i, "attn.qkv.bias_mask")
            guard let t = store[name] else { throw TrainingError.missingTensor(name: name, file: file) }
            guard t.shape.dims == [3 * c.embedDim] else {
                throw TrainingError.tensorShape(name: name, file: file, shape: t.shape.dims, expected: [3 * c.embedDim])
            }
            let mask = t.floats()
            guard mask.allSatisfy(\.isFinite) else {
                throw TrainingError.numeric("\(file): \(name) is not finite (the official buffer starts as NaN)")
            }
            return FloatBuffer(mask)
        }
    }

    /// The buffers under their hub names, appended to `store` (the periods only when the weights
    /// carried them, so a file keeps exactly its names).
    public func export(into store: inout TensorStore, config c: Config) throws {
        if let ropePeriods, storedPeriods {
            try store.insert(try Tensor(shape: [ropePeriods.count], floats: ropePeriods), named: HubNames.ropePeriods)
        }
        for (i, mask) in (qkvBiasMasks ?? []).enumerated() {
            try store.insert(try Tensor(shape: [mask.count], floats: mask.array()), named: HubNames.block(i, "attn.qkv.bias_mask"))
        }
    }
}
