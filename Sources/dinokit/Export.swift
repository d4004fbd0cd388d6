import ArgumentParser
import Formats
import Foundation
import Training

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a training run's checkpoint as weights: the teacher backbone (.pth, .safetensors, HF, timm), or the whole state for the official trainer (for ONNX see 'export-onnx').",
        discussion: """
        The teacher backbone (what DINOv2 evaluates) goes out with the hub names (.pth, .safetensors), \
        the HF layout (a folder: config.json + model.safetensors), or timm's (--layout timm). \
        --layout training writes the whole model state as the official training checkpoint holds it: \
        {"model": {student.*, teacher.*, dino_loss.center, ibot_patch_loss.center}, "iteration": N} \
        (.pth), so the official trainer can continue the run. Values are the checkpoint's, bit for bit.
        """)

    @Argument(help: "Run folder (made by `dinokit train ssl`).")
    var runFolder: String

    @Option(help: "Output: .pth, .safetensors, or a folder (HF).")
    var out: String

    @Option(help: "Names to write: hub, hf, timm or training (default hub; hf for a folder).")
    var layout: Layout?

    @Option(help: "Which checkpoint: latest (default) or a step number.")
    var checkpoint: String = "latest"

    @OptionGroup var jsonOption: JSONOption

    func run() throws {
        var step: Int? = nil
        if checkpoint != "latest" {
            guard let n = Int(checkpoint), n >= 0 else { throw ValidationError("--checkpoint must be 'latest' or a step number") }
            step = n
        }
        if let format = Checkpoint.outputFormat(forPath: out) {
            try checkCheckpointOutput(out, format: format, inputs: [runFolder])
        }
        let s = try RunExport.export(run: runFolder, to: out, layout: layout, checkpointStep: step)
        if jsonOption.json {
            try printJSON(s)
        } else {
            print("\(s.checkpoint) (step \(s.step)) -> \(s.output) (\(s.format), \(s.layout)): \(s.tensors) tensors, \(humanBytes(s.bytes))")
        }
    }
}
