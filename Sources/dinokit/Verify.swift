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

    @Argument(help: "Golden-set folder, or its manifest.json.")
    var golden: String

    @Option(help: "Weights to verify (default: the manifest's weights).")
    var weights: String?

    @Option(help: "Absolute tolerance.")
    var atol: Float = Verifier.defaultAbsoluteTolerance

    @Option(help: "Relative tolerance (times max |golden| of each output).")
    var rtol: Float = Verifier.defaultRelativeTolerance

    @Option(help: "Override the manifest's interpolation semantics: official or hf.")
    var interpolation: InterpolationSemantics?

    @OptionGroup var modelOptions: ModelOptions

    @OptionGroup var jsonOption: JSONOption

    func run() throws {
        var set = try GoldenSet.load(directory: Self.folder(golden))
        if let numHeads = modelOptions.numHeads { set.numHeads = numHeads }
        let report = try Verifier.run(set, weightsPath: weights, atol: atol, rtol: rtol, interpolation: interpolation,
                                      parallelism: modelOptions.parallelism)
        if jsonOption.json {
            try printJSON(report)
        } else {
            printTable(report)
        }
        if !report.pass { throw ExitCode.failure }
    }

    private func printTable(_ report: VerificationReport) {
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

    /// The golden set's folder: the argument, or the folder of a manifest file given instead.
    static func folder(_ path: String) -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { return path }
        let parent = (path as NSString).deletingLastPathComponent
        return parent.isEmpty ? "." : parent
    }
}
