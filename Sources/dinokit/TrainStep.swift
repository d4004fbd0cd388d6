import ArgumentParser
import Foundation
import Kernels
import Training

struct TrainStep: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-step",
        abstract: "Run the steps of a PyTorch-made DINOv2 training debug state and compare every number.",
        discussion: """
        STATE_DIR is a dinokit-sslstep/1 folder (Scripts/make-sslstep writes them from the official \
        code): config.json, initial.safetensors, step_<t>.npz, expected.json, grads_0.safetensors, \
        final.safetensors. DinoKit runs every step from the initial weights (teacher, losses, backward, \
        per-module clipping, AdamW, EMA) and compares: every loss term within 1e-4 relative; every \
        step-0 gradient tensor within 1e-3 * max|expected| + 1e-7; every final tensor within \
        1e-6 + 0.05*lr*N for 99.99% of its elements and 2*lr*N for all (elements with a near-zero \
        expected gradient only need the latter). Exits 0 only if everything passes.
        """)

    @Argument(help: "Debug-state folder.")
    var stateDir: String

    @Option(help: "Write DinoKit's losses.json, grads_0.safetensors and final.safetensors here.")
    var out: String?

    @Option(help: "Threads (default: DINOKIT_NUM_THREADS or the number of cores).")
    var threads: Int?

    @Flag(help: "Print the report as JSON.")
    var json = false

    func run() throws {
        var passed = false
        try runReportingErrors {
            if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
            let parallelism = threads.map { Parallelism(threads: $0) } ?? .fromEnvironment
            let state = try DebugState(directory: stateDir)
            let result = try DebugStateReplay.run(state, parallelism: parallelism)
            if let out { try result.write(to: out) }
            let r = result.report
            passed = r.pass
            if json {
                try printJSON(r)
                return
            }
            var rows: [[String]] = []
            for (t, terms) in r.lossErrors.enumerated() {
                for (name, ours, theirs, rel) in terms {
                    rows.append(["\(t)", name, String(format: "%.7g", ours), String(format: "%.7g", theirs),
                                 String(format: "%.2e", rel)])
                }
            }
            print(renderTable(["step", "term", "dinokit", "pytorch", "rel err"], rows, rightAligned: [2, 3, 4]))
            let gradFails = r.gradientComparisons.filter { !$0.pass }.count
            print("gradients (step 0): \(r.gradientComparisons.count) tensors, max rel err \(String(format: "%.2e", r.grads.maxRelErr)) (\(r.grads.worst)), \(gradFails) failed")
            let finalFails = r.finalComparisons.filter { !$0.pass }.count
            let checked = r.finalComparisons.map(\.maxCheckedErr).max() ?? 0
            print("final (\(state.config.steps) steps): \(r.finalComparisons.count) tensors, max abs err \(String(format: "%.2e", r.final.maxAbsErr)) (\(r.final.worst)), \(String(format: "%.2e", checked)) where the tight bound applies, \(finalFails) failed")
            for f in r.failures { print("FAIL \(f)") }
            print("\(r.pass ? "pass" : "FAIL"): \(state.config.steps) steps in \(String(format: "%.3f", result.seconds)) s")
        }
        if !passed { throw ExitCode.failure }
    }
}
