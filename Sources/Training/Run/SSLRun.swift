import Foundation
import Kernels
import TensorStore

/// A `dinokit train ssl` run in a folder: `config.json` (the resolved run config),
/// `metrics.jsonl`, `knn.json`, `loss.png`, `knn.png`, `checkpoints/`.
///
/// Step s uses the schedules' values at s, the batch `source.batch(step: s)` and stochastic-depth
/// draws keyed by (seed, s); the centres' queued statistics are applied right after each step
/// (the next step would apply them first thing, so the numbers are the official ones) so that a
/// checkpoint holds the whole state. Resuming from a checkpoint therefore repeats the
/// uninterrupted run's steps exactly, for the same thread count.
public final class SSLRun {
    public let folder: String
    public let config: SSLRunConfig
    public let source: any SSLBatchSource
    public let trainer: SSLTrainer
    public let schedules: SSLSchedules
    /// The next step to run.
    public private(set) var step: Int
    /// k-NN on a labelled folder at the start and at each epoch end.
    public var knn: KNNMonitor?
    /// Called after every step (progress bars).
    public var onStep: ((StepMetrics) -> Void)?
    /// Called at each epoch end with its last step's metrics (k-NN filled in when measured).
    public var onEpochEnd: ((StepMetrics) -> Void)?
    /// Draws loss.png and knn.png at epoch ends (nil: no pictures).
    public var drawCurves: ((_ run: String) throws -> Void)? = RunCurves.write
    private let baseGroups: [[ParameterGroup]]
    private var groupsPhase: Bool?

    public var stepsPerEpoch: Int { source.stepsPerEpoch }
    public var totalSteps: Int { schedules.totalSteps }

    public static let configFile = "config.json"
    public static let knnFile = "knn.json"

    /// A new run in `folder` (created; refused when it already holds checkpoints: resume instead).
    public init(folder: String, config: SSLRunConfig, source: any SSLBatchSource, model: SSLModel,
                parallelism: Parallelism = .fromEnvironment) throws {
        try config.validate()
        if let existing = try? RunCheckpoint.path(run: folder), FileManager.default.fileExists(atPath: existing) {
            throw SSLRunError.runFolder(path: folder, message: "already holds a run (\(existing)); continue it with --resume or choose another --out")
        }
        try OutputPath.createFolder(folder)
        self.folder = folder
        self.config = config
        self.source = source
        schedules = try SSLSchedules(config: config, stepsPerEpoch: source.stepsPerEpoch)
        trainer = SSLTrainer(model: model, parallelism: parallelism)
        baseGroups = trainer.groups
        step = 0
        try AtomicFileWriter.write(to: (folder as NSString).appendingPathComponent(Self.configFile)) { try $0.write([UInt8](try config.encoded())) }
        try MetricsLog.truncate(run: folder, before: 0)
        try? FileManager.default.removeItem(atPath: (folder as NSString).appendingPathComponent(Self.knnFile))
    }

    /// Continues the run in `folder` from its latest checkpoint (or the one of `checkpointStep`).
    public init(resuming folder: String, source: any SSLBatchSource, checkpointStep: Int? = nil,
                parallelism: Parallelism = .fromEnvironment) throws {
        let path = try RunCheckpoint.path(run: folder, step: checkpointStep)
        // A killed run may have left temporaries of files this run will not write again (the
        // curves of a finished run): the run folder is DinoKit's, so all dead writers' go.
        for dir in [folder, (folder as NSString).appendingPathComponent(RunCheckpoint.folder)] {
            AtomicFileWriter.sweepStaleTemporaries(in: dir)
        }
        let (state, moments, info) = try RunCheckpoint.read(path: path)
        let config = info.config
        guard source.stepsPerEpoch > 0 else { throw SSLRunError.runFolder(path: folder, message: "the data gives no batch") }
        guard info.stepsPerEpoch == 0 || info.stepsPerEpoch == source.stepsPerEpoch else {
            throw SSLRunError.runFolder(path: folder, message: "the run had \(info.stepsPerEpoch) steps per epoch, the data now gives \(source.stepsPerEpoch) (\(source.imageCount) images at batch \(config.batchSize)): resume with the same --data")
        }
        schedules = try SSLSchedules(config: config, stepsPerEpoch: source.stepsPerEpoch)
        let backbone = try SSLStart.backbone(store: try SSLCheckpointBackbone.teacher(state), file: path, numHeads: Self.numHeads(state))
        var ssl = SSLStart.sslConfig(run: config, backbone: backbone.0, totalSteps: schedules.totalSteps)
        ssl.dinoHead = try SSLStart.headConfig(in: state, prefix: "student.dino_head.", inDim: backbone.0.embedDim, file: path)
        if state["student.ibot_head.last_layer.weight_v"] != nil {
            ssl.ibotHead = try SSLStart.headConfig(in: state, prefix: "student.ibot_head.", inDim: backbone.0.embedDim, file: path)
        }
        let model = try SSLModel(config: ssl, store: state, file: path)
        self.folder = folder
        self.config = config
        self.source = source
        trainer = SSLTrainer(model: model, parallelism: parallelism)
        try RunCheckpoint.restoreOptimizer(trainer, from: moments, info: info, file: path)
        baseGroups = trainer.groups
        step = info.step
        try MetricsLog.truncate(run: folder, before: step)
        let points = readKNN().filter { $0.step <= step }
        try writeKNN(points)
    }

    static func numHeads(_ state: TensorStore) -> Int? { state.metadata["num_heads"].flatMap { Int($0) } }

    /// Runs steps until `limit` (default: the end of the run) or the end.
    public func run(until limit: Int? = nil) throws {
        let end = Swift.min(limit ?? totalSteps, totalSteps)
        if step == 0, let knn, readKNN().isEmpty {
            try writeKNN([KNNPoint(step: 0, epoch: 0, knn: try knn.accuracy(of: trainer.model))])
        }
        while step < end {
            var m = try runStep()
            let done = step + 1
            let epochEnd = done % stepsPerEpoch == 0 || done == totalSteps
            if epochEnd, let knn {
                let acc = try knn.accuracy(of: trainer.model)
                m.knn = acc
                try writeKNN(readKNN().filter { $0.step < done } + [KNNPoint(step: done, epoch: m.epoch + 1, knn: acc)])
            }
            try MetricsLog.append(m, run: folder)
            step = done
            onStep?(m)
            if epochEnd || (config.checkpointEvery > 0 && done % config.checkpointEvery == 0) {
                try checkpoint()
            }
            if epochEnd {
                try drawCurves?(folder)
                onEpochEnd?(m)
            }
        }
    }

    /// Writes a checkpoint of the state after `step` steps.
    @discardableResult
    public func checkpoint() throws -> String {
        try RunCheckpoint.save(trainer: trainer, info: .init(step: step, optimizerSteps: trainer.optimizer.stepCount,
                                                             seed: config.seed, config: config, stepsPerEpoch: stepsPerEpoch),
                               run: folder, keep: config.keepCheckpoints)
    }

    func runStep() throws -> StepMetrics {
        let s = step
        let hyper = schedules.hyperparameters(step: s)
        applyFreezing(step: s)
        if config.dropPathRate > 0 {
            var g = RunRandom(seed: config.seed, 0x4452_4F50, UInt64(s))
            trainer.stochasticDepth = StochasticDepth(rate: config.dropPathRate, uniform: config.dropPathUniform,
                                                      seed: UInt32(truncatingIfNeeded: g.next()))
        } else {
            trainer.stochasticDepth = nil
        }
        let batch = try source.batch(step: s)
        let start = monotonicSeconds()
        let terms = try trainer.step(batch, hyper: hyper)
        let model = trainer.model
        model.dinoCenter.applyQueuedUpdate()
        model.ibotCenter.applyQueuedUpdate()
        let seconds = monotonicSeconds() - start
        let center = CenterStats(model.dinoCenter.values)
        return StepMetrics(step: s, epoch: s / stepsPerEpoch, total: terms.total, dinoLocal: terms.dinoLocal,
                           dinoGlobal: terms.dinoGlobal, koleo: terms.koleo, ibot: terms.ibot, lr: hyper.lr,
                           lastLayerLR: hyper.lastLayerLR, wd: hyper.weightDecay, teacherMomentum: hyper.teacherMomentum,
                           teacherTemp: hyper.teacherTemperature, teacherEntropy: trainer.lastTeacherEntropy ?? .nan,
                           centerNorm: center.norm, centerMean: center.mean, centerStd: center.std, seconds: seconds, knn: nil)
    }

    /// `freeze_blocks`: those blocks get lr 0 and weight decay 0 throughout; the first
    /// `heads_warmup_steps` steps the whole backbone does.
    func applyFreezing(step s: Int) {
        let warm = s < config.headsWarmupSteps
        guard groupsPhase != warm else { return }
        groupsPhase = warm
        guard warm || !config.freezeBlocks.isEmpty else {
            trainer.groups = baseGroups
            return
        }
        var groups = baseGroups
        let frozen = Set(config.freezeBlocks.map { "blocks.\($0)." })
        let slots = trainer.model.student.backbone.layout.slots
        for (i, slot) in slots.enumerated() {
            let inFrozenBlock = frozen.contains { slot.name.hasPrefix($0) }
            if warm || inFrozenBlock {
                groups[0][i].lrMultiplier = 0
                groups[0][i].wdMultiplier = 0
            }
        }
        trainer.groups = groups
    }

    /// One k-NN measurement of the run (`knn.json`).
    public struct KNNPoint: Codable, Sendable, Equatable {
        public var step: Int
        public var epoch: Int
        public var knn: Double
    }

    public func readKNN() -> [KNNPoint] { Self.readKNN(run: folder) }

    public static func readKNN(run: String) -> [KNNPoint] {
        let path = (run as NSString).appendingPathComponent(knnFile)
        guard let bytes = try? RegularFile.read(path) else { return [] }
        let data = Data(bytes)
        return (try? JSONDecoder().decode([KNNPoint].self, from: data)) ?? []
    }

    func writeKNN(_ points: [KNNPoint]) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try e.encode(points)
        try AtomicFileWriter.write(to: (folder as NSString).appendingPathComponent(Self.knnFile)) { try $0.write([UInt8](data)) }
    }
}

/// The teacher backbone of a training state as hub names (for its config).
enum SSLCheckpointBackbone {
    static func teacher(_ state: TensorStore) throws -> TensorStore {
        var hub = TensorStore()
        hub.metadata = state.metadata.filter { $0.key == "num_heads" }
        for (name, t) in state.tensors where name.hasPrefix("teacher.backbone.") {
            try hub.insert(t, named: String(name.dropFirst("teacher.backbone.".count)))
        }
        return hub
    }
}
