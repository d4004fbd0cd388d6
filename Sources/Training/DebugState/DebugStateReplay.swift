import Foundation
import Formats
import Kernels
import TensorStore

/// A debug state run by DinoKit: its loss terms per step, its step-0 gradients (before
/// clipping) and its final state, under the debug state's names, with the comparison.
public struct DebugStateReplay {
    public var losses: [LossTerms]
    /// `student.<module>.<name>` → d total / d parameter at step 0.
    public var gradients: TensorStore
    /// The initial.safetensors names after all steps.
    public var final: TensorStore
    public var report: StepReport
    /// Activation and scratch memory of the step.
    public var workspaceBytes: Int
    public var seconds: Double

    /// Runs every step of `state` from its initial weights and compares.
    public static func run(_ state: DebugState, parallelism: Parallelism = .fromEnvironment) throws -> DebugStateReplay {
        let start = Date()
        let model = try SSLModel(config: state.config, store: state.initial,
                                 file: (state.directory as NSString).appendingPathComponent(DebugState.initialFile))
        let trainer = SSLTrainer(model: model, parallelism: parallelism)
        let hyper = state.config.hyperparameters
        var losses: [LossTerms] = []
        var gradients = TensorStore()
        for t in 0..<state.config.steps {
            let batch = try state.batch(step: t)
            losses.append(try trainer.forwardBackward(batch, hyper: hyper))
            if t == 0 {
                for (name, block) in trainer.gradients.named { try block.export(into: &gradients, prefix: "student.\(name).") }
            }
            trainer.update(hyper: hyper)
        }
        let final = try model.export()
        let report = StepReport.compare(losses: losses, gradients: gradients, final: final, expected: state)
        return DebugStateReplay(losses: losses, gradients: gradients, final: final, report: report,
                                workspaceBytes: trainer.workspaceBytes, seconds: Date().timeIntervalSince(start))
    }

    /// Writes `losses.json`, `grads_0.safetensors` and `final.safetensors` (the debug state's
    /// names and shapes) into `directory`, creating it; each file atomically.
    public func write(to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        struct File: Encodable { var steps: [LossTerms] }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let json = try encoder.encode(File(steps: losses))
        try AtomicFileWriter.write(to: (directory as NSString).appendingPathComponent("losses.json")) { w in
            try json.withUnsafeBytes { try w.write($0) }
        }
        try Safetensors.write(gradients, to: (directory as NSString).appendingPathComponent(DebugState.gradientsFile))
        try Safetensors.write(final, to: (directory as NSString).appendingPathComponent(DebugState.finalFile))
    }
}
