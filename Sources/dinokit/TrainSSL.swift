import ArgumentParser
import Datasets
import DINOv2
import Formats
import Foundation
import Images
import Kernels
import Reporting
import TensorStore
import Training

struct TrainSSL: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ssl",
        abstract: "Continue DINOv2 self-supervised (DINO + iBOT + KoLeo) training on a folder of images.",
        discussion: """
        Starts from backbone weights (hub .pth, safetensors, HF folder or timm; DINO/iBOT heads are then \
        built with the official init, the teacher a copy of the student) or from an official training \
        checkpoint (heads, centres and teacher taken from it). One epoch is one pass over --data. The run \
        folder gets config.json (every setting, resolved), metrics.jsonl (one line per step: loss terms, \
        schedules, teacher entropy, centre statistics, knn at epoch ends), knn.json, loss.png, knn.png and \
        checkpoints/ (atomic; every --checkpoint-every steps and at each epoch end). --resume RUN continues \
        from RUN's latest checkpoint with the same numbers an uninterrupted run gives (same seed and \
        --threads). Settings: defaults < --config file (JSON or YAML, snake_case keys as in config.json) < options.
        """)

    @Option(help: "Starting weights: a backbone (any layout) or an official training checkpoint.")
    var weights: String?

    @Option(help: "Folder of JPEG/PNG images (flat or one subfolder per class; searched recursively).")
    var data: String

    @Option(help: "Run folder to create.")
    var out: String?

    @Option(help: "Continue the run in this folder from its latest checkpoint; 'auto': continue --out if it has a checkpoint, else start it. Settings repeated from the run must equal its own.")
    var resume: String?

    @Option(help: "Run settings as JSON or YAML (.yaml/.yml; keys as in a run's config.json).")
    var config: String?

    @Option(help: "Epochs (passes over the data; default 10).")
    var epochs: Int?

    @Option(help: "Images per step (default 16).")
    var batch: Int?

    @Option(help: "Learning rate after scaling (default base_lr 0.004 * sqrt(batch / 1024)).")
    var lr: Double?

    @Option(help: "Random seed: crops, masks, drop path, head init, k-NN split (default 0).")
    var seed: UInt64?

    @Option(help: "Local crops per image (default 8).")
    var localCrops: Int?

    @Option(help: "DINO head prototypes (default 4096; official 65536).")
    var prototypes: Int?

    @Option(help: "Backbone blocks to freeze (lr 0, weight decay 0), e.g. 0-7 or 0,1,4-5.")
    var freezeBlocks: String?

    @Option(help: "Steps at the start that train the heads only (backbone frozen).")
    var headsWarmupSteps: Int?

    @Option(help: "A checkpoint every N steps besides those at epoch ends.")
    var checkpointEvery: Int?

    @Option(help: "Labelled folder (one subfolder per class): k-NN top-1 of the teacher at the start and each epoch end.")
    var knnData: String?

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Stop after this many steps of the run (the run can be resumed).")
    var stopAfter: Int?

    @OptionGroup var progress: QuietOption

    @OptionGroup var jsonOption: JSONOption

    struct Summary: Encodable {
        var run: String
        var steps: Int
        var totalSteps: Int
        var epochs: Int
        /// Images trained on (readable), and the files skipped (--data and --knn-data).
        var images: Int
        var skipped: [SkippedFile]
        var seconds: Double
        var imagesPerSecond: Double
        var firstLoss: Double?
        var lastLoss: Double?
        var knn: [SSLRun.KNNPoint]
        var checkpoint: String?
    }

    /// Settings: `base` (the defaults, or a resumed run's own) < --config file < options.
    func resolvedConfig(over base: SSLRunConfig = SSLRunConfig()) throws -> SSLRunConfig {
        var c = base
        if let config {
            c = try SSLRunConfig.load(file: config, over: base)
        }
        if let epochs { c.epochs = epochs }
        if let batch { c.batchSize = batch }
        if let lr { c.lr = lr }
        if let seed { c.seed = seed }
        if let localCrops { c.localCropsNumber = localCrops }
        if let prototypes {
            c.headPrototypes = prototypes
            c.ibotHeadPrototypes = prototypes
        }
        if let freezeBlocks { c.freezeBlocks = try SSLRunConfig.parseBlocks(freezeBlocks) }
        if let headsWarmupSteps { c.headsWarmupSteps = headsWarmupSteps }
        if let checkpointEvery { c.checkpointEvery = checkpointEvery }
        try c.validate(file: config ?? "options")
        return c
    }

    static func source(_ c: SSLRunConfig, data: String, patch: Int, parallelism: Parallelism) throws -> MultiCropSource {
        var crops = MultiCropConfig()
        crops.globalCropsSize = c.globalCropsSize
        crops.globalCropsScale = c.globalCropsScale
        crops.localCropsNumber = c.localCropsNumber
        crops.localCropsSize = c.localCropsSize
        crops.localCropsScale = c.localCropsScale
        var masks = MaskConfig()
        masks.ratioMin = c.maskRatioMinMax[0]
        masks.ratioMax = c.maskRatioMinMax[1]
        masks.sampleProbability = c.maskSampleProbability
        return try MultiCropSource(images: try ImageList(scanning: data), config: crops, maskConfig: masks, patchSize: patch,
                                   batchSize: c.batchSize, seed: c.seed, parallelism: parallelism)
    }

    func run() throws {
        try modelOptions.requireF32("train ssl")
        let parallelism = modelOptions.parallelism
        let started = monotonicSeconds()
        let run: SSLRun
        var knn: KNNMonitor?
        if let resume = try resumeFolder() {
            let (_, _, info) = try RunCheckpoint.read(path: try RunCheckpoint.path(run: resume))
            try checkRepeatedSettings(recorded: info.config, run: resume)
            knn = try knnData.map { try Self.knnMonitor($0, config: info.config, parallelism: parallelism) }
            let patch = try patchSize(runCheckpoint: resume)
            run = try SSLRun(resuming: resume, source: try Self.source(info.config, data: data, patch: patch, parallelism: parallelism),
                             parallelism: parallelism)
        } else {
            guard let weights else { throw ValidationError("missing --weights (or --resume RUN)") }
            guard let out else { throw ValidationError("missing --out (the run folder)") }
            var c = try resolvedConfig()
            // Before the run folder exists: a k-NN set that cannot be used stops nothing half-made.
            knn = try knnData.map { try Self.knnMonitor($0, config: c, parallelism: parallelism) }
            let store = try Checkpoint.read(path: weights).store
            let state = try SSLStart.trainingState(store)
            let model: SSLModel
            let source: MultiCropSource
            if SSLStart.isTrainingState(state) {
                var teacher = TensorStore()
                for (n, t) in state.tensors where n.hasPrefix("teacher.backbone.") { try teacher.insert(t, named: String(n.dropFirst(17))) }
                let (backbone, _) = try SSLStart.backbone(store: teacher, file: weights, numHeads: modelOptions.numHeads)
                let dino = try SSLStart.headConfig(in: state, prefix: "student.dino_head.", inDim: backbone.embedDim, file: weights)
                c.headPrototypes = dino.outDim
                c.headHiddenDim = dino.hiddenDim
                c.headBottleneckDim = dino.bottleneckDim
                c.headLayers = dino.layers
                c.ibotSeparateHead = state["student.ibot_head.last_layer.weight_v"] != nil
                source = try Self.source(c, data: data, patch: backbone.patchSize, parallelism: parallelism)
                var ssl = SSLStart.sslConfig(run: c, backbone: backbone, totalSteps: c.epochs * source.stepsPerEpoch)
                if c.ibotSeparateHead {
                    let ibot = try SSLStart.headConfig(in: state, prefix: "student.ibot_head.", inDim: backbone.embedDim, file: weights)
                    ssl.ibotHead = ibot
                    c.ibotHeadPrototypes = ibot.outDim
                }
                var clean = state
                clean.metadata = [:]
                model = try SSLModel(config: ssl, store: clean, file: weights)
            } else {
                let (backbone, hub) = try SSLStart.backbone(store: store, file: weights, numHeads: modelOptions.numHeads)
                source = try Self.source(c, data: data, patch: backbone.patchSize, parallelism: parallelism)
                let ssl = SSLStart.sslConfig(run: c, backbone: backbone, totalSteps: c.epochs * source.stepsPerEpoch)
                model = try SSLStart.fromBackbone(hub: hub, config: ssl, seed: c.seed, file: weights)
            }
            run = try SSLRun(folder: out, config: c, source: source, model: model, parallelism: parallelism)
        }
        run.knn = knn
        let readableImages = run.source.imageCount
        let first = run.step, batchSize = run.config.batchSize
        let bar = ProgressBar(label: "train ssl", total: run.totalSteps, enabled: !progress.quiet && !jsonOption.json && ProgressBar.stderrIsTerminal)
        var stepSeconds = 0.0
        var firstLoss: Double?, lastLoss: Double?
        run.onStep = { m in
            stepSeconds += m.seconds
            if firstLoss == nil { firstLoss = m.total }
            lastLoss = m.total
            bar.update(m.step + 1, detail: String(format: "epoch %d  loss %.4f  entropy %.3f  %.1f img/s", m.epoch + 1, m.total,
                                                   m.teacherEntropy, Double(batchSize) / Swift.max(m.seconds, 1e-9)))
        }
        run.onEpochEnd = { m in
            guard !jsonOption.json else { return }
            let knn = m.knn.map { String(format: "  knn %.1f%%", 100 * $0) } ?? ""
            bar.finish(nil, done: m.step + 1)
            print(String(format: "epoch %d/%d  step %d  loss %.4f  teacher entropy %.3f%@", m.epoch + 1, run.config.epochs, m.step + 1,
                         m.total, m.teacherEntropy, knn))
        }
        let limit = stopAfter.map { Swift.min(run.totalSteps, $0) }
        try run.run(until: limit)
        if run.step < run.totalSteps, run.step > first { try run.checkpoint() }
        let steps = run.step - first
        // Skipped files: unusable at scan time, failed to decode in a batch (replaced), k-NN set.
        let scanProblems = (run.source as? MultiCropSource)?.images.problems ?? []
        let decodeFailures = (run.source as? MultiCropSource)?.decodeFailures ?? []
        let skipped = (scanProblems + decodeFailures).map { SkippedFile(file: $0.path, reason: $0.reason) }
            + (knn?.skipped ?? []).map { SkippedFile(file: $0.path, reason: $0.reason) }
        for s in skipped where !jsonOption.json { FileHandle.standardError.write(Data("dinokit: warning: skipped \(s.file): \(s.reason)\n".utf8)) }
        let summary = Summary(run: run.folder, steps: steps, totalSteps: run.totalSteps, epochs: run.config.epochs,
                              images: readableImages - decodeFailures.count, skipped: skipped, seconds: monotonicSeconds() - started,
                              imagesPerSecond: stepSeconds > 0 ? Double(steps * batchSize) / stepSeconds : 0,
                              firstLoss: firstLoss, lastLoss: lastLoss, knn: run.readKNN(),
                              checkpoint: try? RunCheckpoint.path(run: run.folder))
        if jsonOption.json {
            try printJSON(summary)
        } else {
            if !skipped.isEmpty { print("skipped \(skipped.count) unreadable file(s) (--data and --knn-data)") }
            print("\(run.folder): \(run.step)/\(run.totalSteps) steps, \(String(format: "%.1f", summary.imagesPerSecond)) images/s in the steps; checkpoint \(summary.checkpoint ?? "-")")
        }
    }

    /// The run to continue: --resume RUN, or with --resume auto the --out folder when it has a
    /// checkpoint (nil: start a new run in --out).
    func resumeFolder() throws -> String? {
        guard resume == "auto" else { return resume }
        guard let out else { throw ValidationError("--resume auto needs --out (the run folder to continue or start)") }
        return (try? RunCheckpoint.path(run: out)) != nil ? out : nil
    }

    /// Resuming, the command line may repeat the run's settings, so that one command both starts
    /// and continues a run; a setting that differs from the run's (config.json) is refused, each
    /// named. --weights is accepted as it is: it only chose the start, and the run records its
    /// state in the checkpoint, not the path it started from.
    func checkRepeatedSettings(recorded: SSLRunConfig, run folder: String) throws {
        var conflicts: [String] = []
        if let out, Self.samePath(out, folder) == false {
            conflicts.append("--out \(out) is not the resumed run \(folder)")
        }
        let wanted = try resolvedConfig(over: recorded)
        let mine = try Self.settings(wanted), theirs = try Self.settings(recorded)
        for key in mine.keys.sorted() where mine[key] != theirs[key] {
            conflicts.append("\(key) \(mine[key] ?? "unset") (the run has \(theirs[key] ?? "unset"))")
        }
        guard conflicts.isEmpty else {
            throw ValidationError("--resume \(folder): settings differ from the run's: \(conflicts.joined(separator: "; "))")
        }
    }

    /// A config as config.json's keys, each value as compact JSON text (comparable, printable).
    static func settings(_ c: SSLRunConfig) throws -> [String: String] {
        let object = try JSONSerialization.jsonObject(with: try c.encoded()) as? [String: Any] ?? [:]
        return try object.mapValues { value in
            String(decoding: try JSONSerialization.data(withJSONObject: [value], options: [.sortedKeys]), as: UTF8.self)
                .dropFirst().dropLast().description
        }
    }

    static func samePath(_ a: String, _ b: String) -> Bool {
        func normal(_ p: String) -> String { URL(fileURLWithPath: p).standardizedFileURL.resolvingSymlinksInPath().path }
        return normal(a) == normal(b)
    }

    /// The k-NN monitor, evaluated at the training resolution (eval resize/crop ratio 256/224, as DINOv2's).
    static func knnMonitor(_ folder: String, config c: SSLRunConfig, parallelism: Parallelism) throws -> KNNMonitor {
        let g = c.globalCropsSize
        return try KNNMonitor(folder: folder, seed: c.seed, preprocess: .eval(resize: Int((Double(g) * 256 / 224).rounded()), crop: g),
                              parallelism: parallelism)
    }

    func patchSize(runCheckpoint run: String) throws -> Int {
        let (state, _, _) = try RunCheckpoint.read(path: try RunCheckpoint.path(run: run))
        guard let w = state["student.backbone.patch_embed.proj.weight"], w.shape.dims.count == 4 else {
            throw ValidationError("\(run): checkpoint has no patch embedding")
        }
        return w.shape.dims[2]
    }
}
