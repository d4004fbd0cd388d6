import ArgumentParser
import Foundation
import Kernels
import Training

struct TrainStep: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "step",
        abstract: "Run the steps of a PyTorch-made DINOv2 training debug state and compare every number.",
        discussion: """
        STATE_DIR is a dinokit-sslstep/1 folder (Scripts/make-sslstep writes them from the official \
        code): config.json, initial.safetensors, step_<t>.npz, expected.json, grads_0.safetensors, \
        final.safetensors. DinoKit runs every step from the initial weights (teacher, losses, backward, \
        per-module clipping, AdamW, EMA) and compares: every loss term within 1e-4 relative; every \
        step-0 gradient tensor within 1e-3 * max|expected| + 1e-7; every final tensor within \
        1e-6 + 0.05*lr*N for 99.99% of its elements and 2*lr*N for all (elements with a near-zero \
        expected gradient only need the latter). Exits 0 only if everything passes.

        With --bench, times whole steps instead (a benchmark, not a check): on STATE_DIR's model and \
        first batch if given, else on synthetic weights and crops of the PyTorch benchmark's step \
        (Scripts/bench-sslstep-pytorch: ViT-S/14, 2x224 + 8x98 crops per image, K 65536, batch 8).
        """)

    @Argument(help: "Debug-state folder (optional with --bench).")
    var stateDir: String?

    @Option(help: "Write DinoKit's losses.json, grads_0.safetensors and final.safetensors here.")
    var out: String?

    @OptionGroup var threading: ThreadsOption

    @OptionGroup var kernelPath: KernelsOption

    @OptionGroup var jsonOption: JSONOption

    @Flag(help: "Time training steps instead of checking a state.")
    var bench = false

    @Option(help: "With --bench and no STATE_DIR: images per step.")
    var batch = 8

    @Option(help: "With --bench and no STATE_DIR: DINO head prototypes K.")
    var prototypes = 65536

    @Option(help: "With --bench: timed steps (after one untimed warm-up step).")
    var repeats = 3

    func run() throws {
        let parallelism = threading.parallelism
        if bench {
            try runBenchmark(parallelism: parallelism)
            return
        }
        guard let stateDir else { throw ValidationError("missing STATE_DIR (a dinokit-sslstep/1 folder)") }
        let state = try DebugState(directory: stateDir)
        let result = try DebugStateReplay.run(state, parallelism: parallelism)
        if let out { try result.write(to: out) }
        let r = result.report
        if jsonOption.json {
            try printJSON(r)
        } else {
            printReport(r, steps: state.config.steps, seconds: result.seconds)
        }
        if !r.pass { throw ExitCode.failure }
    }

    private func printReport(_ r: StepReport, steps: Int, seconds: Double) {
        let rows = r.lossComparisons.map {
            ["\($0.step)", $0.term, String(format: "%.7g", $0.dinokit), String(format: "%.7g", $0.pytorch),
             String(format: "%.2e", $0.relativeError)]
        }
        print(renderTable(["step", "term", "dinokit", "pytorch", "rel err"], rows, rightAligned: [2, 3, 4]))
        let gradFails = r.gradientComparisons.filter { !$0.pass }.count
        print("gradients (step 0): \(r.gradientComparisons.count) tensors, max rel err \(String(format: "%.2e", r.grads.maxRelErr)) (\(r.grads.worst)), \(gradFails) failed")
        let finalFails = r.finalComparisons.filter { !$0.pass }.count
        let checked = r.finalComparisons.map(\.maxCheckedErr).max() ?? 0
        print("final (\(steps) steps): \(r.finalComparisons.count) tensors, max abs err \(String(format: "%.2e", r.final.maxAbsErr)) (\(r.final.worst)), \(String(format: "%.2e", checked)) where the tight bound applies, \(finalFails) failed")
        for f in r.failures { print("FAIL \(f)") }
        print("\(r.pass ? "pass" : "FAIL"): \(steps) steps in \(String(format: "%.3f", seconds)) s")
    }

    func runBenchmark(parallelism: Parallelism) throws {
        guard batch > 0, prototypes > 0, repeats > 0 else { throw ValidationError("--batch, --prototypes and --repeats must be positive") }
        let trainer: SSLTrainer, input: SSLBatch, hyper: StepHyperparameters
        if let stateDir {
            let state = try DebugState(directory: stateDir)
            let model = try SSLModel(config: state.config, store: state.initial,
                                     file: (stateDir as NSString).appendingPathComponent(DebugState.initialFile))
            trainer = SSLTrainer(model: model, parallelism: parallelism)
            input = try state.batch(step: 0)
            hyper = state.config.hyperparameters
        } else {
            var o = SSLBenchmark.Options()
            o.batch = batch
            o.prototypes = prototypes
            let config = SSLBenchmark.config(o)
            trainer = SSLTrainer(model: SSLModel(config: config, seed: 1), parallelism: parallelism)
            input = SSLBenchmark.batch(o)
            hyper = config.hyperparameters
        }
        let log: ((String) -> Void)? = jsonOption.json ? nil : { print($0) }
        let result = try SSLBenchmark.run(trainer, batch: input, hyper: hyper, repeats: repeats, warmup: 1, log: log)
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        struct Output: Encodable {
            var result: SSLBenchmark.Result
            var peakRSSMB: Double
            func encode(to encoder: Encoder) throws {
                try result.encode(to: encoder)
                var c = encoder.container(keyedBy: K.self)
                try c.encode(peakRSSMB, forKey: .peak)
            }
            enum K: String, CodingKey { case peak = "peak_rss_mb" }
        }
        let peak = (Double(usage.ru_maxrss) / 102.4).rounded() / 10
        if jsonOption.json {
            try printJSON(Output(result: result, peakRSSMB: peak))
            return
        }
        let r = result
        print("\(r.batch) images (2x\(input.globalSize) + \(r.localCrops) crops each), K \(r.prototypes), \(r.maskedPatches) masked patches, \(r.threads) threads, \(r.kernelPath) kernels")
        print(renderTable(["phase", "ms (median)"], r.phasesMsMedian.sorted { $0.key < $1.key }.map { [$0.key, String(format: "%.1f", $0.value)] },
                          rightAligned: [1]))
        print("step: \(String(format: "%.1f", r.msPerStepMedian)) ms (median of \(r.msPerStep.count)), CPU \(String(format: "%.1f", r.cpuMsPerStepMedian)) ms; activations and scratch \(String(format: "%.1f", r.workspaceMB)) MB, parameters/gradients/moments/teacher \(String(format: "%.1f", r.parameterMB)) MB, peak RSS \(String(format: "%.1f", peak)) MB")
    }
}

/// `dinokit train-step`, the command's name before it moved under `train`: kept working for
/// scripts (Scripts/bench-sslstep uses it), hidden from the help.
struct TrainStepAlias: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-step", abstract: "Old name of 'dinokit train step'.", shouldDisplay: false)

    @OptionGroup var step: TrainStep

    func run() throws { try step.run() }
}
