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
        max |dinokit - golden| <= atol + rtol * max |golden|. With --precision bf16 or int8 an output passes \
        when the mean cosine similarity of its token vectors with the golden ones is >= --min-cosine and \
        max |dinokit - golden| <= atol + rtol * max |golden| at that precision's tolerances (the \
        manifest's "tolerances", else bf16: 0.999, 0.05, 0.05; int8: 0.999, 0.1, 0.1). Exits 0 only if \
        every output passes.
        """)

    @Argument(help: "Golden-set folder, or its manifest.json.")
    var golden: String

    @Option(help: "Weights to verify (default: the manifest's weights).")
    var weights: String?

    @Option(help: "Absolute tolerance (default 1e-4 at f32; at bf16 the manifest's or 0.05, at int8 the manifest's or 0.1).")
    var atol: Float?

    @Option(help: "Relative tolerance, times max |golden| of each output (default 1e-5 at f32; at bf16 the manifest's or 0.05, at int8 the manifest's or 0.1).")
    var rtol: Float?

    @Option(help: "Least mean cosine similarity per output at a reduced precision (default: the manifest's or 0.999).")
    var minCosine: Double?

    @Option(help: "Override the manifest's interpolation semantics: official or hf.")
    var interpolation: InterpolationSemantics?

    @OptionGroup var modelOptions: ModelOptions

    @OptionGroup var jsonOption: JSONOption

    func run() throws {
        var set = try GoldenSet.load(directory: Self.folder(golden))
        if let numHeads = modelOptions.numHeads { set.numHeads = numHeads }
        let precision = modelOptions.precision
        var similarity = Verifier.similarityTolerance(for: precision, set: set)
        if similarity != nil {
            if let atol { similarity?.atol = atol }
            if let rtol { similarity?.rtol = rtol }
            if let minCosine { similarity?.minCosine = minCosine }
        } else if minCosine != nil {
            throw ValidationError("--min-cosine applies to a reduced --precision only (f32 passes on atol and rtol)")
        }
        let report = try Verifier.run(set, weightsPath: weights, atol: atol ?? Verifier.defaultAbsoluteTolerance,
                                      rtol: rtol ?? Verifier.defaultRelativeTolerance, interpolation: interpolation,
                                      precision: precision, similarity: similarity, parallelism: modelOptions.parallelism)
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
                             o.cosine.map { String(format: "%.6f", $0) } ?? "-",
                             o.pass ? "pass" : "FAIL" + (o.error.map { ": \($0)" } ?? "")])
            }
        }
        print(renderTable(["case", "output", "max abs err", "max rel err", "max |golden|", "cosine", "result"], rows))
        let outputs = report.cases.flatMap(\.outputs)
        let failed = outputs.filter { !$0.pass }.count
        if let t = report.tolerance, let p = report.precision {
            print("\(outputs.count - failed) passed, \(failed) failed (precision \(p): mean cosine >= \(t.minCosine), atol \(t.atol), rtol \(t.rtol))")
        } else {
            print("\(outputs.count - failed) passed, \(failed) failed (atol \(atol ?? Verifier.defaultAbsoluteTolerance), rtol \(rtol ?? Verifier.defaultRelativeTolerance))")
        }
    }

    /// The golden set's folder: the argument, or the folder of a manifest file given instead.
    static func folder(_ path: String) -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { return path }
        let parent = (path as NSString).deletingLastPathComponent
        return parent.isEmpty ? "." : parent
    }
}
