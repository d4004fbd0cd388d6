import ArgumentParser
import Foundation
import Formats
import Kernels
import TensorStore

/// Layouts an output can be written in: every detected layout but `unknown`, which only
/// describes inputs (help and parsing both leave it out).
extension Layout: ExpressibleByArgument {
    public init?(argument: String) {
        guard let layout = Layout(rawValue: argument), layout != .unknown else { return nil }
        self = layout
    }

    public static var allValueStrings: [String] { allCases.filter { $0 != .unknown }.map(\.rawValue) }
}
extension TrainingBranch: ExpressibleByArgument {}

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a checkpoint between formats (.pth, safetensors, HF folder, .npz), DINOv2 layouts and dtypes.",
        discussion: """
        The output format follows the output path: .safetensors, .pth/.pt, .npz, or a folder (a path \
        ending in '/' or without an extension) for a HuggingFace folder (config.json + model.safetensors, \
        or with --max-shard-size shards model-0000k-of-0000n.safetensors + model.safetensors.index.json). \
        An HF folder input may hold model.safetensors, pytorch_model.bin or sharded copies of either. \
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

    @Option(name: .customLong("max-shard-size"),
            help: "HF folder output: shards of at most this size, as save_pretrained(max_shard_size=) splits them: bytes, or KB/MB/GB/TB (powers of 1000) or KiB/MiB/GiB/TiB, e.g. 5GB, 500MB. One model.safetensors when the weights fit.")
    var maxShardSize: String?

    @OptionGroup var heads: HeadsOption

    @OptionGroup var jsonOption: JSONOption

    func validate() throws {
        // Chunks are a property of the training layout's names (blocks.<k>.<i>); elsewhere they
        // would be ignored, so they are refused instead.
        if chunks != 0 && layout != .training {
            throw ValidationError("--chunks applies only with --layout training")
        }
        if chunks < 0 { throw ValidationError("--chunks must not be negative") }
        if let maxShardSize {
            guard HFShardPlan.parseSize(maxShardSize) != nil else {
                throw ValidationError("--max-shard-size '\(maxShardSize)' is not a size: give bytes or a number with KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB, e.g. 5GB or 500MB")
            }
            guard Checkpoint.outputFormat(forPath: output) == .hfFolder else {
                throw ValidationError("--max-shard-size applies only to an HF folder output (a path ending in '/')")
            }
        }
    }

    struct Summary: Encodable {
        var input: String
        var output: String
        var inputFormat: String
        var inputLayout: String
        var outputFormat: String
        var outputLayout: String
        /// Weight files of an HF folder output (1, or the number of shards).
        var shards: Int?
        var tensors: Int
        var bytes: Int
        var seconds: Double
    }

    func run() throws {
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
        if let numHeads = heads.numHeads {
            store.metadata["num_heads"] = String(numHeads)
        }
        // Decided on the hub-named store, said once the file is written (a failed write says only its error).
        let warning = headsWarning(store, inputLayout: inputLayout, format: format)
        if let dtype {
            guard let target = DType(rawValue: dtype.uppercased()), [.f32, .f16, .bf16].contains(target) else {
                throw ValidationError("--dtype must be f32, f16 or bf16, not '\(dtype)'")
            }
            store = try store.converted(to: target)
        }
        var shards: Int?
        if format == .hfFolder {
            guard outputLayout == .hf else { throw ValidationError("a folder output is an HF folder; --layout \(outputLayout.rawValue) needs a file path") }
            shards = try HFFolder.write(hub: store, to: output, maxShardSize: maxShardSize.flatMap(HFShardPlan.parseSize)).count
        } else {
            if outputLayout != .hub && outputLayout != .unknown {
                store = try KeyLayouts.render(store, as: outputLayout, chunks: chunks)
            }
            try Checkpoint.write(store, to: output, format: format)
        }
        if let warning { FileHandle.standardError.write(Data("dinokit: warning: \(warning)\n".utf8)) }
        let summary = Summary(input: input, output: output, inputFormat: inputFormat.rawValue, inputLayout: inputLayout.rawValue,
                              outputFormat: format.rawValue, outputLayout: outputLayout.rawValue, shards: shards,
                              tensors: store.count, bytes: store.byteCount, seconds: monotonicSeconds() - start)
        if jsonOption.json {
            try printJSON(summary)
        } else {
            let files = (shards ?? 1) > 1 ? ", \(shards ?? 1) shards" : ""
            print("\(input) (\(summary.inputFormat), \(summary.inputLayout)) -> \(output) (\(summary.outputFormat), \(summary.outputLayout)\(files)): \(store.count) tensors, \(humanBytes(store.byteCount)) in \(String(format: "%.3f", summary.seconds)) s")
        }
    }

    /// A width that is not a multiple of 64 does not imply its heads: an output without
    /// num_heads (none known, or a .pth / .npz, which keep tensors only) loads only with
    /// --num-heads. Said now rather than at the next command.
    private func headsWarning(_ store: TensorStore, inputLayout: Layout, format: CheckpointFormat) -> String? {
        guard inputLayout != .unknown, let arch = try? BackboneArchitecture.detect(hubStore: store), arch.embedDim % 64 != 0 else {
            return nil
        }
        let keepsMetadata = format == .safetensors || format == .hfFolder
        guard let heads = store.metadata["num_heads"] else {
            return "width \(arch.embedDim) is not a multiple of 64 and no num_heads is recorded: commands that load \(output) will need --num-heads N (convert with --num-heads N to a .safetensors or HF folder to record it)"
        }
        guard keepsMetadata else {
            return "width \(arch.embedDim) is not a multiple of 64 and a \(format.rawValue) file cannot record num_heads: commands that load \(output) will need --num-heads \(heads) (a .safetensors or HF folder records it)"
        }
        return nil
    }
}
