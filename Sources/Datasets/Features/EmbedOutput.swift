import DINOv2
import TensorStore

/// What `dinokit embed` keeps of each image's forward.
///
/// `cls+avgpool` and `intermediate4` are the inputs of DINOv2's linear evaluation
/// (dinov2/eval/linear.py `create_linear_input` over `get_intermediate_layers(x, n,
/// return_class_token=True)`, norm=True): the class tokens of the last n blocks concatenated in
/// block order, then the mean of the last block's patch tokens.
public enum EmbedOutputKind: String, CaseIterable, Sendable, Codable {
    /// The normed class token, `model(x)`: (D).
    case cls
    /// The normed patch tokens, `x_norm_patchtokens`: (h·w, D).
    case patch
    /// `create_linear_input(n=1, avgpool=True)`: [cls, mean(patches)], (2D).
    case clsAvgpool = "cls+avgpool"
    /// `create_linear_input(n=4, avgpool=True)`: [cls₋₄, cls₋₃, cls₋₂, cls₋₁, mean(patches₋₁)], (5D).
    case intermediate4

    /// The shape of one image's features.
    public func rowShape(embedDim d: Int, patches: Int) -> [Int] {
        switch self {
        case .cls: return [d]
        case .patch: return [patches, d]
        case .clsAvgpool: return [2 * d]
        case .intermediate4: return [5 * d]
        }
    }

    /// Features of a (B, 3, H, W) batch, B rows of `rowShape` floats each, in batch order.
    public func features(_ model: Model, _ x: Tensor, workspace: Workspace) throws -> [Float] {
        let d = model.config.embedDim
        switch self {
        case .cls:
            return try model(x, workspace: workspace).floats()
        case .patch:
            return try model.forwardFeatures(x, workspace: workspace).patchTokens.floats()
        case .clsAvgpool:
            let f = try model.forwardFeatures(x, workspace: workspace)
            return EmbedOutputKind.linearInput(classTokens: [f.clsToken.floats()], patchTokens: f.patchTokens.floats(),
                                               batch: x.shape[0], embedDim: d)
        case .intermediate4:
            guard model.config.depth >= 4 else {
                throw EvaluationError.invalidArgument(what: "--output intermediate4",
                                                      detail: "needs the last 4 blocks, the model has \(model.config.depth)")
            }
            let layers = try model.intermediateLayers(x, n: 4, returnClassToken: true, norm: true, workspace: workspace)
            guard let last = layers.last else { return [] }
            return EmbedOutputKind.linearInput(classTokens: layers.map { $0.classToken?.floats() ?? [] },
                                               patchTokens: last.patchTokens.floats(), batch: x.shape[0], embedDim: d)
        }
    }

    /// Per image: each (B, D) class-token matrix's row, then the mean over the patches of
    /// (B, P, D) `patchTokens`. The mean is summed in Double: within an ulp of torch's float mean.
    static func linearInput(classTokens: [[Float]], patchTokens: [Float], batch: Int, embedDim d: Int) -> [Float] {
        let patches = batch > 0 && d > 0 ? patchTokens.count / (batch * d) : 0
        var out = [Float]()
        out.reserveCapacity(batch * (classTokens.count + 1) * d)
        var sum = [Double](repeating: 0, count: d)
        for b in 0..<batch {
            for cls in classTokens { out += cls[(b * d)..<((b + 1) * d)] }
            for i in 0..<d { sum[i] = 0 }
            for p in 0..<patches {
                let row = (b * patches + p) * d
                for i in 0..<d { sum[i] += Double(patchTokens[row + i]) }
            }
            for i in 0..<d { out.append(Float(sum[i] / Double(Swift.max(1, patches)))) }
        }
        return out
    }
}
