/// Why a store could not be translated between layouts. Each case names the tensor or key involved.
public enum LayoutError: Error, CustomStringConvertible, Equatable {
    /// The names match no DINOv2 layout.
    case unrecognized(sample: [String])
    /// A tensor the translation needs is missing (e.g. one of an HF layer's query/key/value).
    case missingTensor(name: String, needed: String)
    /// A tensor's dtype or shape does not fit what the layout requires.
    case badTensor(name: String, detail: String)
    /// A training checkpoint lacks the requested branch.
    case branchMissing(requested: TrainingBranch, available: [String])
    /// A training checkpoint holds no backbone tensors at all.
    case noBackbone(sample: [String])
    /// Two source names translate to the same target name.
    case collision(name: String, sources: [String])
    /// A render request that cannot be done (`unknown` layout, bad chunk count).
    case cannotRender(layout: Layout, reason: String)
    /// A tensor of the model that `layout` has no place for and that changes the outputs (an
    /// untied `cls_norm`, a key bias without its mask): rendering would give another model.
    case unrepresentable(layout: Layout, name: String, reason: String)
    /// A DinoKit metadata entry that does not decode.
    case badMetadata(key: String, reason: String)

    public var description: String {
        switch self {
        case let .unrecognized(sample):
            return "tensor names match no DINOv2 layout (hub, hf, timm, training); first names: \(sample.joined(separator: ", "))"
        case let .missingTensor(name, needed):
            return "missing tensor '\(name)', needed for \(needed)"
        case let .badTensor(name, detail):
            return "tensor '\(name)': \(detail)"
        case let .branchMissing(requested, available):
            let have = available.isEmpty ? "no teacher or student branch" : "only: " + available.joined(separator: ", ")
            return "training checkpoint has no \(requested.rawValue) backbone (\(have)); choose another branch"
        case let .noBackbone(sample):
            return "training checkpoint holds no backbone tensors ('backbone.' keys); first names: \(sample.joined(separator: ", "))"
        case let .collision(name, sources):
            return "'\(sources.joined(separator: "' and '"))' would both become '\(name)'"
        case let .cannotRender(layout, reason):
            return "cannot render the \(layout.rawValue) layout: \(reason)"
        case let .unrepresentable(layout, name, reason):
            return "cannot render the \(layout.rawValue) layout: '\(name)' has no place there (\(reason)); keep the hub layout"
        case let .badMetadata(key, reason):
            return "metadata '\(key)': \(reason)"
        }
    }
}
