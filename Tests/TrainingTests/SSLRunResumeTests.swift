import DINOv2
import Foundation
import Kernels
import TensorStore
import TestSupport
@testable import Training
import XCTest

/// A tiny source whose batch of step s is a pure function of (seed, s), as the protocol asks.
final class KeyedNoiseSource: SSLBatchSource {
    let images: Int, batchSize: Int, seed: UInt64
    let globalSize = 28, localSize = 14, localCount = 2, patch = 14
    init(images: Int, batchSize: Int, seed: UInt64) {
        self.images = images
        self.batchSize = batchSize
        self.seed = seed
    }
    var imageCount: Int { images }
    var stepsPerEpoch: Int { Swift.max(images / batchSize, 1) }
    func batch(step: Int) throws -> SSLBatch {
        var g = RunRandom(seed: seed, 1, UInt64(step))
        let b = batchSize, p = (globalSize / patch) * (globalSize / patch)
        let global = (0..<(2 * b * 3 * globalSize * globalSize)).map { _ in Float(g.normal()) }
        let local = (0..<(localCount * b * 3 * localSize * localSize)).map { _ in Float(g.normal()) }
        let masks = (0..<(2 * b * p)).map { _ in g.bernoulli(0.3) }
        return SSLBatch(batchSize: b, globalCrops: global, globalSize: globalSize, localCrops: local, localCount: localCount,
                        localSize: localSize, masks: masks)
    }
}

/// Resuming a run gives the uninterrupted run's numbers exactly, also after a kill mid-write.
final class SSLRunResumeTests: XCTestCase {
    static func runConfig() -> SSLRunConfig {
        var c = SSLRunConfig()
        c.epochs = 2
        c.batchSize = 4
        c.seed = 7
        c.headPrototypes = 64
        c.headHiddenDim = 32
        c.headBottleneckDim = 16
        c.localCropsNumber = 2
        c.globalCropsSize = 28
        c.localCropsSize = 14
        c.dropPathRate = 0.3
        c.warmupEpochs = 1
        c.warmupTeacherTempEpochs = 1
        c.checkpointEvery = 2
        c.headsWarmupSteps = 1
        c.freezeBlocks = [0]
        c.lr = 0.01
        return c
    }

    static func model(_ c: SSLRunConfig, total: Int) -> SSLModel {
        let backbone = Config(embedDim: 32, depth: 2, numHeads: 2, patchSize: 14, positionGrid: 4,
                              interpolation: PositionInterpolation(offset: 0.1, antialias: false))
        let m = SSLModel(config: SSLStart.sslConfig(run: c, backbone: backbone, totalSteps: total), seed: 3)
        for (i, (_, block)) in m.student.named.enumerated() where i > 0 { SSLStart.initializeHead(block, seed: c.seed, index: UInt64(i)) }
        for (t, s) in zip(m.teacher.blocks, m.student.blocks) { t.copy(from: s) }
        return m
    }

    func testResumeRepeatsTheUninterruptedRun() throws {
        let c = Self.runConfig()
        let source = KeyedNoiseSource(images: 12, batchSize: 4, seed: c.seed)  // 3 steps per epoch, 6 in all
        let par = Parallelism(threads: 2)
        let a = makeTemporaryDirectory("sslrun-a"), b = makeTemporaryDirectory("sslrun-b")
        defer { try? FileManager.default.removeItem(atPath: a); try? FileManager.default.removeItem(atPath: b) }

        let full = try SSLRun(folder: a, config: c, source: source, model: Self.model(c, total: 6), parallelism: par)
        try full.run()
        let expected = MetricsLog.read(run: a)
        XCTAssertEqual(expected.count, 6)
        XCTAssertTrue(expected.allSatisfy { $0.total.isFinite && $0.teacherEntropy > 0 })

        // Interrupted after 5 steps (checkpoints after 2, 3 and 4): the metrics of step 4 were
        // written past the last checkpoint, and a kill left a half-written temporary checkpoint behind.
        let first = try SSLRun(folder: b, config: c, source: source, model: Self.model(c, total: 6), parallelism: par)
        try first.run(until: 5)
        let dir = (b as NSString).appendingPathComponent(RunCheckpoint.folder)
        try? FileManager.default.removeItem(atPath: (dir as NSString).appendingPathComponent(RunCheckpoint.fileName(step: 5)))
        try AtomicFileWriter.write(to: (dir as NSString).appendingPathComponent(RunCheckpoint.latestFile)) {
            try $0.write(RunCheckpoint.fileName(step: 4) + "\n")
        }
        let partial = (dir as NSString).appendingPathComponent("." + RunCheckpoint.fileName(step: 5) + ".tmp-Ab12Cd")
        let complete = try Data(contentsOf: URL(fileURLWithPath: (dir as NSString).appendingPathComponent(RunCheckpoint.fileName(step: 4))))
        try complete.prefix(complete.count / 2).write(to: URL(fileURLWithPath: partial))
        XCTAssertEqual(MetricsLog.read(run: b).count, 5)

        let resumed = try SSLRun(resuming: b, source: source, parallelism: par)
        XCTAssertEqual(resumed.step, 4)
        XCTAssertEqual(MetricsLog.read(run: b).count, 4)
        try resumed.run()
        let got = MetricsLog.read(run: b)
        XCTAssertEqual(got.count, expected.count)
        for (x, y) in zip(got, expected) {
            XCTAssertEqual(x.deterministic, y.deterministic, "step \(y.step)")
        }
        // The final states are bit-identical too.
        let sa = try RunCheckpoint.read(path: try RunCheckpoint.path(run: a)), sb = try RunCheckpoint.read(path: try RunCheckpoint.path(run: b))
        XCTAssertEqual(sa.info, sb.info)
        for name in sa.model.names + sa.optimizer.names {
            let ta = sa.model[name] ?? sa.optimizer[name], tb = sb.model[name] ?? sb.optimizer[name]
            XCTAssertEqual(ta?.floats(), tb?.floats(), name)
        }
        // Written after 2, 3, 4 and 6 steps (every 2, and epoch ends); the newest 3 kept.
        XCTAssertEqual(try RunCheckpoint.steps(run: a).map(\.step), [3, 4, 6])
    }

    func testFrozenBlocksAndHeadsWarmupKeepWeights() throws {
        var c = Self.runConfig()
        c.headsWarmupSteps = 2
        c.freezeBlocks = [1]
        c.dropPathRate = 0
        let source = KeyedNoiseSource(images: 12, batchSize: 4, seed: c.seed)
        let dir = makeTemporaryDirectory("sslrun-freeze")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = try SSLRun(folder: dir, config: c, source: source, model: Self.model(c, total: 6), parallelism: .serial)
        let student = run.trainer.model.student
        let before = student.backbone.array("blocks.0.attn.qkv.weight"), frozen = student.backbone.array("blocks.1.attn.qkv.weight")
        let head = student.dinoHead.array("mlp.0.weight")
        try run.run(until: 2)
        XCTAssertEqual(student.backbone.array("blocks.0.attn.qkv.weight"), before, "backbone moved during the heads' warm-up")
        XCTAssertNotEqual(student.dinoHead.array("mlp.0.weight"), head, "heads did not train")
        try run.run(until: 4)
        XCTAssertNotEqual(student.backbone.array("blocks.0.attn.qkv.weight"), before)
        XCTAssertEqual(student.backbone.array("blocks.1.attn.qkv.weight"), frozen, "a frozen block moved")
    }
}
