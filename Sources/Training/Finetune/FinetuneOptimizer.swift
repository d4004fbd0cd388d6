import Kernels

/// Which optimiser a fine-tuning run steps with.
public enum FinetuneOptimizerKind: Sendable, Equatable {
    /// `torch.optim.SGD(momentum=…)`: DINOv2's linear eval (momentum 0.9).
    case sgd(momentum: Double)
    /// `torch.optim.AdamW` (β 0.9, 0.999, eps 1e-8).
    case adamw

    public var name: String {
        switch self {
        case let .sgd(m): return "sgd(momentum \(m))"
        case .adamw: return "adamw"
        }
    }
}

/// SGD or AdamW over parameter blocks, stepped with one learning rate per step (the schedule's)
/// scaled per tensor by its `ParameterGroup`.
public final class FinetuneOptimizer {
    public let kind: FinetuneOptimizerKind
    public let weightDecay: Double
    private let sgd: SGD?
    private let adamw: AdamW?

    public init(_ kind: FinetuneOptimizerKind, modules: [ParameterLayout], weightDecay: Double) {
        self.kind = kind
        self.weightDecay = weightDecay
        switch kind {
        case let .sgd(momentum):
            sgd = SGD(modules: modules, momentum: momentum)
            adamw = nil
        case .adamw:
            sgd = nil
            adamw = AdamW(modules: modules)
        }
    }

    public func step(params: [ParameterBlock], grads: [ParameterBlock], groups: [[ParameterGroup]], lr: Double,
                     parallelism: Parallelism = .serial) {
        if let sgd {
            sgd.step(params: params, grads: grads, groups: groups, lr: lr, weightDecay: weightDecay)
        } else if let adamw {
            let h = StepHyperparameters(lr: lr, lastLayerLR: lr, weightDecay: weightDecay, teacherMomentum: 0,
                                        teacherTemperature: 1)
            adamw.step(params: params, grads: grads, groups: groups, hyper: h, parallelism: parallelism)
        }
    }

    /// A head as one torch parameter group: full lr and weight decay on weight and bias (what
    /// `optim(head.parameters(), weight_decay=…)` does).
    public static func headGroups(_ layout: ParameterLayout, lrMultiplier: Double = 1) -> [ParameterGroup] {
        layout.slots.map { _ in ParameterGroup(lrMultiplier: lrMultiplier, wdMultiplier: 1, isLastLayer: false) }
    }
}

extension LinearHead {
    /// Forward, cross-entropy and backward for one mini-batch of features (rows·features floats):
    /// the gradients accumulate into `grads`.
    public func trainStep(x: [Float], labels: [Int], grads: ParameterBlock, parallelism: Parallelism) -> CrossEntropy.Result {
        let rows = labels.count
        var logits = [Float](repeating: 0, count: rows * classes)
        var dlogits = logits
        return x.withUnsafeBufferPointer { xp in
            logits.withUnsafeMutableBufferPointer { forward(xp.baseAddress!, rows: rows, logits: $0.baseAddress!, parallelism: parallelism) }
            let result = labels.withUnsafeBufferPointer { y in
                CrossEntropy.evaluate(logits: logits, labels: y.baseAddress!, rows: rows, classes: classes, dlogits: &dlogits)
            }
            dlogits.withUnsafeBufferPointer { d in
                backward(xp.baseAddress!, dlogits: d.baseAddress!, rows: rows, grads: grads, dinput: nil, parallelism: parallelism)
            }
            return result
        }
    }

    /// Logits of every row, for evaluation.
    public func logits(x: [Float], rows: Int, parallelism: Parallelism) -> [Float] {
        var out = [Float](repeating: 0, count: rows * classes)
        guard rows > 0 else { return out }
        x.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { forward(xp.baseAddress!, rows: rows, logits: $0.baseAddress!, parallelism: parallelism) }
        }
        return out
    }
}
