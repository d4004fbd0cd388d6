import ArgumentParser
import Foundation
import Formats
import Kernels
import TensorStore

extension Layout: ExpressibleByArgument {}
extension TrainingBranch: ExpressibleByArgument {}

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a checkpoint between formats (.pth, safetensors, HF folder, .npz), DINOv2 layouts and dtypes.",
        discussion: """
        The output format follows the output path: .safetensors, .pth/.pt, .npz, or a folder (a path \
        ending in '/' or without an extension) for a HuggingFace folder (config.json + model.safetensors). \
        A DINOv2 checkpoint in any layout (hub, HF, timm, training) is first brought to the official hub \
        names; --layout chooses the names written (default hub). Training checkpoints give the teacher \
        backbone, as DINOv2 evaluates it (--branch student for the student). Other checkpoints are \
        converted as they are, names untouched.
        """)

    @Argument(help: "Input checkpoint (format detected from its content).")
    var input: String

    @Argument(help: "Output path: .safetensors, .pth, .npz, or a folder for the HF layout.")
    var output: String

    @Option(help: "Names to write: hub, hf, timm or training (default: hub; hf for folders).")
    var layout: Layout?

    @Option(help: "Convert floating-point tensors to F32, F16 or BF16 (round to nearest even).")
    var dtype: String?

    @Option(help: "For training checkpoints: which backbone to take, teacher or student.")
    var branch: TrainingBranch = .teacher

    @Option(help: "With --layout training: split blocks into this many chunks (blocks.<k>.<i>), as FSDP training does.")
    var chunks: Int = 0

    @Option(name: .customLong("num-heads"), help: "Attention heads, recorded in the output's metadata; needed for widths that are not a multiple of 64 (every hub model has head dim 64).")
    var numHeads: Int?

    @Flag(help: "Print a JSON summary.")
    var json = false

    struct Summary: Encodable {
        var input: String
        var output: String
        var inputFormat: String
        var inputLayout: String
        var outputFormat: String
        var outputLayout: String
        var tensors: Int
        var bytes: Int
        var seconds: Double
    }

    func run() throws {
        try runReportingErrors {
            let start = monotonicSeconds()
            guard let format = Checkpoint.outputFormat(forPath: output) else {
                throw ValidationError("cannot tell the output format from '\(output)': use .safetensors, .pth, .npz or a folder")
            }
            try checkCheckpointOutput(output, format: format, inputs: [input])
            let (inputFormat, source) = try Checkpoint.read(path: input)
            let inputLayout = KeyLayouts.detect(source)
            var store = source
            let outputLayout = layout ?? (format == .hfFolder ? .hf : (inputLayout == .unknown ? .unknown : .hub))
            if inputLayout != .unknown {
                store = try KeyLayouts.canonicalize(source, detected: inputLayout, which: branch).store
            } else if let layout, layout != .unknown {
                throw ValidationError("\(input) is not a DINOv2 checkpoint in a known layout; it can be converted only with its names kept (omit --layout)")
            }
            if let numHeads {
                guard numHeads > 0 else { throw ValidationError("--num-heads must be positive") }
                store.metadata["num_heads"] = String(numHeads)
            }
            if let dtype {
                guard let target = DType(rawValue: dtype.uppercased()), [.f32, .f16, .bf16].contains(target) else {
                    throw ValidationError("--dtype must be f32, f16 or bf16, not '\(dtype)'")
                }
                store = try store.converted(to: target)
            }
            if format == .hfFolder {
                guard outputLayout == .hf else { throw ValidationError("a folder output is an HF folder; --layout \(outputLayout.rawValue) needs a file path") }
                try Checkpoint.write(store, to: output, format: .hfFolder)
            } else {
                if outputLayout != .hub && outputLayout != .unknown {
                    store = try KeyLayouts.render(store, as: outputLayout, chunks: chunks)
                }
                try Checkpoint.write(store, to: output, format: format)
            }
            let summary = Summary(input: input, output: output, inputFormat: inputFormat.rawValue, inputLayout: inputLayout.rawValue,
                                  outputFormat: format.rawValue, outputLayout: outputLayout.rawValue,
                                  tensors: store.count, bytes: store.byteCount, seconds: monotonicSeconds() - start)
            if json {
                try printJSON(summary)
            } else {
                print("\(input) (\(summary.inputFormat), \(summary.inputLayout)) -> \(output) (\(summary.outputFormat), \(summary.outputLayout)): \(store.count) tensors, \(humanBytes(store.byteCount)) in \(String(format: "%.3f", summary.seconds)) s")
            }
        }
    }
}
