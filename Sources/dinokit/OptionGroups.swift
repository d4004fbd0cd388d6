import ArgumentParser
import DINOv2
import Foundation
import Kernels
import TensorStore

// Options that several commands share, each defined, explained and validated once here; a
// command includes the groups it needs with @OptionGroup, so the spelling, the help text and
// the check are the same in every command.

/// --num-heads: the one fact DINOv2 weights do not always say (widths not a multiple of 64).
struct HeadsOption: ParsableArguments {
    // .unconditional: "--num-heads -1" reaches validate() instead of reading as an option.
    @Option(name: .customLong("num-heads"), parsing: .unconditional,
            help: "Attention heads, for widths that are not a multiple of 64 when the weights do not record num_heads (hub models have head dim 64; convert records it in the output).")
    var numHeads: Int?

    func validate() throws {
        if let numHeads, numHeads <= 0 { throw ValidationError("--num-heads must be positive, not \(numHeads)") }
    }
}

/// --threads: how many threads the model's kernels use.
struct ThreadsOption: ParsableArguments {
    @Option(parsing: .unconditional, help: "Threads (default: DINOKIT_NUM_THREADS or the number of cores).")
    var threads: Int?

    func validate() throws {
        if let threads, threads <= 0 { throw ValidationError("--threads must be positive, not \(threads)") }
    }

    /// --threads, else DINOKIT_NUM_THREADS, else every core.
    var parallelism: Parallelism { threads.map { Parallelism(threads: $0) } ?? .fromEnvironment }
}

/// --weights, for the commands that need one model's weights (train ssl, probe, bench and verify
/// take them optionally, with their own alternatives, and declare their own).
struct WeightsOption: ParsableArguments {
    @Option(help: "Model weights in any format and layout DinoKit reads (.pth, .safetensors, HF folder, timm, training checkpoint).")
    var weights: String
}

extension KernelPath: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}

/// --precision: the number format of the model's linear layers (`Precision`).
struct PrecisionOption: ParsableArguments {
    @Option(help: "Linear layers' GEMM precision: f32 (exact, default), bf16 (bf16 weights and GEMM inputs, float accumulation) or int8 (weights int8 per output channel, inputs int8 per token, int32 accumulation); norms, softmax, GELU, attention and residuals stay f32.")
    var precision: Precision = .f32
}

/// --kernels: the instruction set DinoKit's kernels use, as DINOKIT_KERNELS chooses it (which the
/// option overrides). A path this CPU cannot run falls back to the best one below it, as the
/// variable does, with a warning.
struct KernelsOption: ParsableArguments {
    @Option(help: "Kernel path: avx512, avx2 or scalar (default: DINOKIT_KERNELS, else the best this CPU supports).")
    var kernels: KernelPath?

    /// The path is process-wide and must be chosen before any kernel runs. ArgumentParser calls
    /// this once the command line is parsed and before the command's run(), for every command
    /// that includes the group: so none can forget to apply it, and none applies it its own way.
    func validate() throws {
        guard let kernels else { return }
        let active = KernelDispatch.select(kernels)
        if active != kernels {
            FileHandle.standardError.write(Data("dinokit: warning: --kernels \(kernels.rawValue): this CPU supports at most \(active.rawValue); using \(active.rawValue)\n".utf8))
        }
    }
}

/// --max-weight-memory: how much memory a model's weights may take in memory; above it they are
/// streamed, one block at a time in each forward (`Model.Loading`).
struct WeightMemoryOption: ParsableArguments {
    static let environmentVariable = "DINOKIT_MAX_WEIGHT_MEMORY"

    @Option(name: .customLong("max-weight-memory"),
            help: "Most memory the model's weights may take, e.g. 12G (K, M, G, T: powers of 1024). Weights that would take more in memory (about their float32 size) are streamed: each forward loads one block at a time, same outputs. Default: DINOKIT_MAX_WEIGHT_MEMORY, else the machine's memory less a quarter (at least 2 GiB).")
    var maxWeightMemory: String?

    func validate() throws { _ = try maxBytes() }

    /// --max-weight-memory, else DINOKIT_MAX_WEIGHT_MEMORY, else `MachineMemory.defaultWeightBudget`;
    /// sizes read as `ReadLimits` reads them.
    func maxBytes() throws -> Int {
        if let maxWeightMemory {
            guard let bytes = ReadLimits.parseByteCount(maxWeightMemory) else {
                throw ValidationError("--max-weight-memory: '\(maxWeightMemory)' is not a size; give a positive number of bytes, optionally with K, M, G or T (e.g. 12G)")
            }
            return bytes
        }
        if let raw = ProcessInfo.processInfo.environment[Self.environmentVariable] {
            guard let bytes = ReadLimits.parseByteCount(raw) else {
                throw ValidationError("\(Self.environmentVariable)='\(raw.escapedForMessage)' is not a size; give a positive number of bytes, optionally with K, M, G or T (e.g. 12G), or unset it")
            }
            return bytes
        }
        return MachineMemory.defaultWeightBudget
    }
}

/// The options of every command that runs a model from weights: --num-heads, --threads, --kernels,
/// --max-weight-memory and --precision. (Training takes --num-heads, --threads and --kernels: it
/// needs every weight, in f32.)
struct ModelOptions: ParsableArguments {
    @OptionGroup var heads: HeadsOption
    @OptionGroup var threading: ThreadsOption
    @OptionGroup var kernelPath: KernelsOption
    @OptionGroup var weightMemory: WeightMemoryOption
    @OptionGroup var precisionOption: PrecisionOption

    var numHeads: Int? { heads.numHeads }
    var precision: Precision { precisionOption.precision }

    var parallelism: Parallelism { threading.parallelism }

    /// How models load under --max-weight-memory.
    func loading() throws -> Model.Loading { .automatic(maxWeightBytes: try weightMemory.maxBytes()) }

    /// The model of the weights at `path`, in memory or streamed as --max-weight-memory says.
    func model(weights path: String) throws -> Model {
        try model(store: loadWeights(path: path))
    }

    func model(store: TensorStore) throws -> Model {
        try Model(store: store, numHeads: numHeads, precision: precision, parallelism: parallelism, loading: loading())
    }
}

/// One line saying how a model holds its weights, for the commands' human output.
func weightsLine(_ model: Model) -> String {
    switch model.loading {
    case .streamed:
        return "weights: streamed, one block at a time" + (model.peakStreamedWeightBytes.map { " (at most \(humanBytes($0)) held at once)" } ?? "")
    default:
        return "weights: in memory"
    }
}

/// --json: the result as one JSON document on stdout (keys in docs/json-output.md, snake_case).
struct JSONOption: ParsableArguments {
    @Flag(help: "Print the result as one JSON document on stdout (snake_case keys; see docs/json-output.md).")
    var json = false
}

/// --quiet: for commands that show progress on stderr.
struct QuietOption: ParsableArguments {
    @Flag(help: "No progress bars or status lines (warnings and errors still go to stderr).")
    var quiet = false
}
