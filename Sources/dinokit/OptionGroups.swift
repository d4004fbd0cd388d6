import ArgumentParser
import Foundation
import Kernels

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
    @Option(help: "Linear layers' GEMM precision: f32 (exact, default) or bf16 (bf16 weights and GEMM inputs, float accumulation; norms, softmax, GELU, attention and residuals stay f32).")
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

/// The options of every command that builds a model from weights: --num-heads, --threads,
/// --kernels and --precision (commands that train ignore the precision: they run f32).
struct ModelOptions: ParsableArguments {
    @OptionGroup var heads: HeadsOption
    @OptionGroup var threading: ThreadsOption
    @OptionGroup var kernelPath: KernelsOption
    @OptionGroup var precisionOption: PrecisionOption

    var numHeads: Int? { heads.numHeads }
    var precision: Precision { precisionOption.precision }

    /// For the commands that do not run reduced precision yet (they would ignore it).
    func requireF32(_ command: String) throws {
        if precision != .f32 { throw ValidationError("\(command) runs f32 only; --precision \(precision.rawValue) is not supported here yet") }
    }
    var parallelism: Parallelism { threading.parallelism }
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
