import ArgumentParser
import DINOv2
import Foundation
import TensorStore

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check DinoKit's DINOv2 against a golden set made by the official PyTorch code.",
        discussion: """
        A golden set is a folder with manifest.json (format dinokit-golden/1), inputs and the official \
        outputs as .npy (Scripts/make-goldens writes them). An output passes when \
        max |dinokit - golden| <= atol + rtol * max |golden|. Exits 0 only if every output passes.
        """)

    @Argument(help: "Golden-set folder (manifest.json).")
    var golden: String

    @Option(help: "Weights to verify (default: the manifest's weights).")
    var weights: String?

    @Option(help: "Absolute tolerance.")
    var atol: Float = Verifier.defaultAbsoluteTolerance

    @Option(help: "Relative tolerance (times max |golden| of each output).")
    var rtol: Float = Verifier.defaultRelativeTolerance

    @Option(help: "Override the manifest's interpolation semantics: official or hf.")
    var interpolation: InterpolationSemantics?

    @Option(name: .customLong("num-heads"), help: "Attention heads, when neither the weights nor the manifest say.")
    var numHeads: Int?

    @Flag(help: "Print the report as JSON.")
    var json = false

    func run() throws {
        var passed = false
        try runReportingErrors {
            var set = try GoldenSet.load(directory: golden)
            if let numHeads { set.numHeads = numHeads }
            let report = try Verifier.run(set, weightsPath: weights, atol: atol, rtol: rtol, interpolation: interpolation)
            passed = report.pass
            if json {
                try printJSON(report)
                return
            }
            var rows: [[String]] = []
            for c in report.cases {
                for o in c.outputs {
                    rows.append([c.name, o.key, o.maxAbsErr.map { String(format: "%.3g", $0) } ?? "-",
                                 o.maxRelErr.map { String(format: "%.3g", $0) } ?? "-",
                                 o.maxAbsRef.map { String(format: "%.3g", $0) } ?? "-",
                                 o.pass ? "pass" : "FAIL" + (o.error.map { ": \($0)" } ?? "")])
                }
            }
            print(renderTable(["case", "output", "max abs err", "max rel err", "max |golden|", "result"], rows))
            let outputs = report.cases.flatMap(\.outputs)
            let failed = outputs.filter { !$0.pass }.count
            print("\(outputs.count - failed) passed, \(failed) failed (atol \(atol), rtol \(rtol))")
        }
        if !passed { throw ExitCode.failure }
    }
}
