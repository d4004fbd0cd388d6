import Foundation
import Formats
import Kernels
import TensorStore

/// `nn.Linear(features, classes)`: the classifier fine-tuning trains, logits = x Wᵀ + b with W
/// stored (classes, features) as PyTorch stores it. Its tensors live in one `ParameterBlock`
/// (`weight`, `bias`) so AdamW, SGD and the gradients share the backbone's machinery.
public final class LinearHead {
    public let classes: Int
    public let features: Int
    public let parameters: ParameterBlock

    public static func layout(classes: Int, features: Int) -> ParameterLayout {
        ParameterLayout([("weight", [classes, features]), ("bias", [classes])])
    }

    /// Zeros.
    public init(classes: Int, features: Int) {
        self.classes = classes
        self.features = features
        parameters = ParameterBlock(layout: LinearHead.layout(classes: classes, features: features))
    }

    public var weight: UnsafeMutablePointer<Float> { parameters.pointer("weight") }
    public var bias: UnsafeMutablePointer<Float> { parameters.pointer("bias") }

    /// DINOv2's `LinearClassifier` initialisation (eval/linear.py): weight ~ N(0, 0.01²), bias 0,
    /// drawn from DinoKit's keyed generator.
    public func initialize(seed: UInt64) {
        var g = RunRandom(seed: seed, 0x4845_4144) // "HEAD"
        let w = weight
        for i in 0..<(classes * features) { w[i] = Float(0.01 * g.normal()) }
        bias.update(repeating: 0, count: classes)
    }

    /// logits (rows, classes) from x (rows, features).
    public func forward(_ x: UnsafePointer<Float>, rows: Int, logits: UnsafeMutablePointer<Float>,
                        parallelism: Parallelism) {
        linearForward(out: logits, inp: x, weight: weight, bias: bias, rows: rows, inFeatures: features,
                      outFeatures: classes, parallelism: parallelism)
    }

    /// Backward of `forward`: dW += dlogitsᵀ·x, db += Σ dlogits into `grads` (this head's layout);
    /// dx = dlogits·W when `dinput` is given (full fine-tuning carries it into the backbone).
    public func backward(_ x: UnsafePointer<Float>, dlogits: UnsafePointer<Float>, rows: Int, grads: ParameterBlock,
                         dinput: UnsafeMutablePointer<Float>?, parallelism: Parallelism) {
        precondition(grads.layout == parameters.layout, "gradient block of another head")
        linearBackward(dinp: dinput, dweight: grads.pointer("weight"), dbias: grads.pointer("bias"), dout: dlogits,
                       inp: x, weight: weight, rows: rows, inFeatures: features, outFeatures: classes,
                       parallelism: parallelism)
    }

    // MARK: - head.safetensors

    public static let format = "dinokit-finetune-head/1"

    /// `weight` (C, F) and `bias` (C) as Float32, with the class names (a JSON array, label order)
    /// and `extra` in the metadata.
    public func store(classNames: [String], extra: [String: String] = [:]) throws -> TensorStore {
        var store = TensorStore()
        try parameters.export(into: &store, prefix: "")
        store.metadata["format"] = LinearHead.format
        let names = try JSONEncoder().encode(classNames)
        store.metadata["classes"] = String(decoding: names, as: UTF8.self)
        store.metadata["num_classes"] = String(classes)
        store.metadata["feature_dim"] = String(features)
        for key in extra.keys.sorted() { store.metadata[key] = extra[key] }
        return store
    }

    /// Reads a head written by `store` (from any format DinoKit reads); the class names come
    /// from the metadata when present.
    public static func load(_ store: TensorStore, file: String) throws -> (head: LinearHead, classNames: [String]) {
        guard let w = store["weight"] else { throw TrainingError.missingTensor(name: "weight", file: file) }
        guard w.shape.rank == 2, w.shape[0] > 0, w.shape[1] > 0 else {
            throw TrainingError.tensorShape(name: "weight", file: file, shape: w.shape.dims, expected: [-1, -1])
        }
        let head = LinearHead(classes: w.shape[0], features: w.shape[1])
        try head.parameters.load(from: store, prefix: "", file: file, strict: true)
        var names = (0..<head.classes).map(String.init)
        if let text = store.metadata["classes"] {
            guard let decoded = try? JSONDecoder().decode([String].self, from: Data(text.utf8)), decoded.count == head.classes else {
                throw TrainingError.config(file: file, message: "metadata 'classes' is not a JSON array of \(head.classes) names")
            }
            names = decoded
        }
        return (head, names)
    }
}
