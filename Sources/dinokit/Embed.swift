import ArgumentParser
import Datasets
import DINOv2
import Evaluation
import Foundation
import Images
import Kernels
import Reporting
import TensorStore

extension EmbedOutputKind: ExpressibleByArgument {}

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Features of image files as a float32 .npy, in file order (resumable).",
        discussion: """
        Inputs: image files as arguments, --dir (an ImageFolder tree: one subfolder per class, \
        torchvision's order; --labels writes int64 labels and <labels>.classes.txt the class names) \
        or --list (a text file, one path per line). Next to the output goes the file list (the files \
        whose rows are in the output, same order: feats.npy -> feats.files.txt). Files that cannot be decoded \
        (missing, a directory, damaged) are skipped with a warning and listed in the summary (--json: \
        skipped [{file, reason}]); --strict stops at the first, naming it, and also refuses files the \
        decoder only warns about. When no file can be read nothing is written and the exit status is 1.

        Outputs: cls (N, D) = model(x); patch (N, h*w, D) = x_norm_patchtokens; cls+avgpool (N, 2D) \
        and intermediate4 (N, 5D) = DINOv2's linear-eval inputs (create_linear_input: class tokens \
        of the last 1 or 4 blocks, then the mean of the last block's patch tokens).

        Presets: eval = Resize(size*256/224, bicubic, shorter side) -> CenterCrop(size) (DINOv2's \
        evaluation transform at --size 224); resize = Resize((size, size), bicubic). Both then \
        ToTensor and Normalize(--mean, --std; ImageNet's by default), exactly as torchvision on PIL.

        Resuming: rows are written batch by batch to <out>.partial with a record in \
        <out>.partial.json; run the same command again after an interruption and it continues. \
        Other arguments (weights, precision, output, preset, batch, files) start over.
        """)

    enum Preset: String, ExpressibleByArgument { case eval, resize }

    @OptionGroup var weightsOption: WeightsOption

    @Argument(help: "Image files (JPEG, PNG).")
    var files: [String] = []

    @Option(help: "ImageFolder tree: one subfolder of images per class.")
    var dir: String?

    @Option(help: "Text file with one image path per line.")
    var list: String?

    @Option(help: "Output .npy (float32).")
    var out: String

    @Option(help: "With --dir: write the labels (int64 .npy) here, class names to <labels>.classes.txt.")
    var labels: String?

    @Option(help: "cls, patch, cls+avgpool or intermediate4.")
    var output: EmbedOutputKind = .cls

    @Option(help: "Preprocessing: eval (shorter side to size*256/224, centre crop size) or resize (size x size).")
    var preset: Preset = .eval

    @Option(help: "Model input side in pixels (a multiple of the patch size).")
    var size: Int = 224

    @Option(help: "Normalisation mean, three comma-separated values (default ImageNet's).")
    var mean: String?

    @Option(help: "Normalisation std, three comma-separated values (default ImageNet's).")
    var std: String?

    @Option(help: "Images per forward batch.")
    var batch: Int = 32

    @OptionGroup var modelOptions: ModelOptions

    @Flag(help: "Stop at the first file that cannot be read.")
    var strict = false

    @OptionGroup var progress: QuietOption

    @OptionGroup var jsonOption: JSONOption

    struct Summary: Encodable {
        var out: String
        var shape: [Int]
        var output: String
        var preprocessing: String
        var files: String
        var labels: String?
        var classes: [String]?
        /// Inputs given, rows written (images embedded), and the inputs skipped with reasons.
        var inputs: Int
        var embedded: Int
        var skipped: [SkippedFile]
        var resumedFrom: Int
        /// The whole command.
        var seconds: Double
        /// Reading, decoding and the model over the files (weights loaded): what images/s is of.
        var embedSeconds: Double
        var imagesPerSecond: Double
    }

    func run() throws {
        let start = monotonicSeconds()
        let sources = [files.isEmpty ? nil : "files", dir.map { _ in "--dir" }, list.map { _ in "--list" }].compactMap { $0 }
        guard sources.count == 1 else {
            throw ValidationError("give exactly one of: image files, --dir, --list (got \(sources.isEmpty ? "none" : sources.joined(separator: ", ")))")
        }
        guard labels == nil || dir != nil else { throw ValidationError("--labels needs --dir (labels come from class folders)") }
        guard batch > 0 else { throw ValidationError("--batch must be positive") }
        guard size > 0 else { throw ValidationError("--size must be positive") }

        var paths = files, folderLabels: [Int]? = nil, classes: [String]? = nil
        if let dir {
            let folder = try ImageFolder(root: dir)
            paths = folder.paths
            folderLabels = folder.labels
            classes = folder.classes
        } else if let list {
            paths = try readList(list)
        }
        guard !paths.isEmpty else { throw ValidationError("no image files to embed") }
        let outputs = [out, Embedder.fileListPath(out)] + (labels.map { [$0, Embedder.classesPath(labels: $0)] } ?? [])
        try checkOutputs(files: outputs, inputs: [weightsOption.weights, list, dir] + paths)

        let model = try modelOptions.model(weights: weightsOption.weights)
        let meanValues = try parseTriple(mean, option: "--mean") ?? Preprocess.imageNetMean
        let stdValues = try parseTriple(std, option: "--std") ?? Preprocess.imageNetStd
        let preprocess: Preprocess
        switch preset {
        case .eval: preprocess = .eval(resize: (size * 256 + 112) / 224, crop: size, mean: meanValues, std: stdValues)
        case .resize: preprocess = .resize(size, mean: meanValues, std: stdValues)
        }
        let embedder = Embedder(model: model, preprocess: preprocess, output: output, batchSize: batch,
                                decodeThreads: model.parallelism.threads)
        let key = embedder.key(paths: paths, weightsID: weightsIdentity(weightsOption.weights))

        let showBar = !progress.quiet && ProgressBar.stderrIsTerminal
        // Counts this run's files (so images/s is this run's rate after resuming).
        var bar = ProgressBar(label: "embed", total: paths.count, enabled: showBar)
        var resumedAt = 0
        let quiet = progress.quiet
        func note(_ text: String, always: Bool = false) {
            guard always || !quiet else { return }
            if bar.enabled { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            FileHandle.standardError.write(Data("dinokit: \(text)\n".utf8))
        }
        let loopStart = monotonicSeconds()
        let result = try embedder.run(paths: paths, out: out, key: key, strict: strict) { event in
            switch event {
            case let .resuming(done, total):
                note("resuming \(out): \(done) of \(total) files already done")
                resumedAt = done
                bar = ProgressBar(label: "embed", total: total - done, enabled: showBar)
            case let .startingOver(reason): note("starting over: \(reason)")
            case let .skipped(f):
                note("warning: skipped " + (f.reason.hasPrefix(f.path) ? f.reason : "\(f.path): \(f.reason)"), always: true)
            case let .progress(done): bar.update(done - resumedAt)
            }
        }
        bar.finish()
        let loopSeconds = monotonicSeconds() - loopStart

        let folder = labels.flatMap { path in folderLabels.map { (path: path, values: $0, classes: classes ?? []) } }
        let listPath = try Embedder.writeSidecars(result, paths: paths, out: out, labels: folder)
        let seconds = monotonicSeconds() - start
        let done = paths.count - result.resumedFrom
        let summary = Summary(out: out, shape: [result.rows] + result.rowShape, output: output.rawValue,
                              preprocessing: preprocess.summary, files: listPath, labels: labels, classes: classes,
                              inputs: paths.count, embedded: result.rows,
                              skipped: result.failures.map { SkippedFile(file: $0.path, reason: $0.reason) },
                              resumedFrom: result.resumedFrom, seconds: seconds,
                              embedSeconds: loopSeconds, imagesPerSecond: loopSeconds > 0 ? Double(done) / loopSeconds : 0)
        if jsonOption.json {
            try printJSON(summary)
        } else if !progress.quiet {
            print("\(model.config)")
            print(weightsLine(model))
            print("preprocessing: \(preprocess.summary)")
            print("wrote \(out) \(summary.shape) (\(output.rawValue)), file list \(listPath)"
                  + (labels.map { ", labels \($0)" } ?? ""))
            // The true counts: rows written and inputs skipped, never the number of inputs alone.
            print(String(format: "%d images embedded, %d skipped, of %d inputs", result.rows, result.failures.count, paths.count))
            print(String(format: "%d inputs read in %.2f s (%.1f inputs/s)%@", done, loopSeconds, summary.imagesPerSecond,
                         result.resumedFrom > 0 ? " after resuming at \(result.resumedFrom)" : ""))
        }
    }
}

/// Non-empty lines of a path list (surrounding spaces trimmed).
func readList(_ path: String) throws -> [String] {
    let data: Data
    do { data = Data(try RegularFile.read(path)) } catch {
        throw ValidationError("--list: cannot read the file: \(error)")
    }
    return String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
        .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
}

/// "0.5,0.5,0.5" -> [0.5, 0.5, 0.5].
func parseTriple(_ text: String?, option: String) throws -> [Double]? {
    guard let text else { return nil }
    let values = text.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
    guard values.count == 3, values.allSatisfy({ $0 != nil }) else {
        throw ValidationError("\(option): give three comma-separated numbers, e.g. 0.485,0.456,0.406")
    }
    return values.compactMap { $0 }
}

/// Path, size and modification time: enough to notice other weights without hashing them.
func weightsIdentity(_ path: String) -> String {
    let attributes = try? FileManager.default.attributesOfItem(atPath: path)
    let size = (attributes?[.size] as? NSNumber)?.int64Value ?? -1
    let date = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
    return "weights=\((path as NSString).standardizingPath) size=\(size) mtime=\(date)"
}
