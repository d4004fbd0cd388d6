import Formats
import Foundation
import TensorStore

/// `dinokit export run/`: a run checkpoint's teacher backbone (what DINOv2 evaluates) in the hub,
/// HF or timm layout, or the whole model state in the official training-checkpoint layout
/// (`{"model": {student.*, teacher.*, dino_loss.center, ibot_patch_loss.center}, "iteration": N}`)
/// for the official trainer to continue. Values are the checkpoint's, bit for bit.
public enum RunExport {
    public struct Summary: Codable, Sendable {
        public var checkpoint: String
        public var step: Int
        public var output: String
        public var format: String
        public var layout: String
        public var tensors: Int
        public var bytes: Int
    }

    /// The teacher backbone under hub names, `num_heads` in its metadata.
    public static func teacherBackbone(_ model: TensorStore) throws -> TensorStore {
        var hub = try SSLCheckpointBackbone.teacher(model)
        hub = try KeyLayouts.render(hub, as: .hub)
        if let h = model.metadata["num_heads"] { hub.metadata = ["num_heads": h] } else { hub.metadata = [:] }
        return hub
    }

    /// The model state as the official `SSLMetaArch.state_dict()` names it (no optimiser state:
    /// DinoKit's AdamW moments are per flat tensor, the official optimiser's are per FSDP shard).
    public static func trainingState(_ model: TensorStore) throws -> TensorStore {
        var out = TensorStore()
        for (name, t) in model.tensors where !name.hasPrefix("optimizer.") { try out.insert(t, named: name) }
        return out
    }

    public static func export(run: String, to output: String, layout: Layout?, checkpointStep: Int? = nil) throws -> Summary {
        let path = try RunCheckpoint.path(run: run, step: checkpointStep)
        let (model, _, info) = try RunCheckpoint.read(path: path)
        guard let format = Checkpoint.outputFormat(forPath: output), [.pytorchZip, .safetensors, .hfFolder].contains(format) else {
            throw SSLRunError.config(file: output, message: "cannot tell the output format: use .pth, .safetensors or a folder (HF)")
        }
        let chosen = layout ?? (format == .hfFolder ? .hf : .hub)
        var written: TensorStore
        switch (chosen, format) {
        case (.training, .pytorchZip):
            written = try trainingState(model)
            try TorchCheckpoint.write(written, to: output, container: "model", integers: [("iteration", info.step)])
        case (.training, .safetensors):
            written = try trainingState(model)
            written.metadata = ["iteration": String(info.step)]
            try Safetensors.write(written, to: output)
        case (.training, _), (.unknown, _):
            throw SSLRunError.config(file: output, message: "--layout \(chosen.rawValue) needs a .pth or .safetensors output")
        case (_, .hfFolder):
            guard chosen == .hf else { throw SSLRunError.config(file: output, message: "a folder output is an HF folder; --layout \(chosen.rawValue) needs a file path") }
            written = try teacherBackbone(model)
            try Checkpoint.write(written, to: output, format: .hfFolder)
        default:
            let hub = try teacherBackbone(model)
            written = chosen == .hub ? hub : try KeyLayouts.render(hub, as: chosen)
            if format == .pytorchZip { written.metadata = [:] }
            try Checkpoint.write(written, to: output, format: format)
        }
        return Summary(checkpoint: path, step: info.step, output: output, format: format.rawValue, layout: chosen.rawValue,
                       tensors: written.count, bytes: written.byteCount)
    }
}
