import DINOv2
import Foundation
import Kernels
import TensorStore

/// Times whole training steps (`dinokit train step --bench`): by default the step of
/// Scripts/bench-sslstep-pytorch — ViT-S/14 student and teacher (img 224, GELU MLP, LayerScale),
/// the default-config DINO head (hidden 2048, bottleneck 256, K 65536, iBOT shared), per image
/// 2 global 224² and 8 local 98² crops, centering, batch 8 — on synthetic weights and crops.
/// A benchmark, not a test: numbers depend on the machine and on what else runs on it.
public enum SSLBenchmark {
    public struct Options: Sendable {
        public var batch = 8
        public var localCrops = 8
        public var globalSize = 224
        public var localSize = 98
        public var prototypes = 65536
        public var embedDim = 384
        public var depth = 12
        public var heads = 6
        public var repeats = 3
        public var warmup = 1

        public init() {}
    }

    public struct Result: Codable, Sendable {
        public var msPerStepMedian: Double
        public var msPerStep: [Double]
        /// CPU time of all threads per step: on a busy machine wall time grows, this much less.
        public var cpuMsPerStepMedian: Double
        public var phasesMsMedian: [String: Double]
        public var threads: Int
        public var batch: Int
        public var globalCrops: String
        public var localCrops: String
        public var prototypes: Int
        public var maskedPatches: Int
        public var studentParams: Int
        /// Activations, backward scratch and head buffers of the step.
        public var workspaceMB: Double
        /// Parameters, gradients, AdamW moments and the teacher.
        public var parameterMB: Double
        public var precision = "fp32"
        /// OpenBLAS's kernel family, for the record: the step's GEMMs no longer run through it.
        public var blasCore = BLASInfo.coreName
        /// The instruction set of DinoKit's own kernels, which run every GEMM of the step.
        public var kernelPath = KernelDispatch.active.rawValue

        enum CodingKeys: String, CodingKey {
            case msPerStepMedian = "ms_per_step_median", msPerStep = "ms_per_step", phasesMsMedian = "phases_ms_median"
            case cpuMsPerStepMedian = "cpu_ms_per_step_median"
            case threads, batch, globalCrops = "global_crops", localCrops = "local_crops", prototypes
            case maskedPatches = "masked_patches", studentParams = "student_params", workspaceMB = "workspace_mb"
            case parameterMB = "parameter_mb", precision, blasCore = "blas_core", kernelPath = "kernel_path"
        }
    }

    /// The benchmark's model config (the PyTorch bench's preset, with `options`' sizes).
    public static func config(_ o: Options) -> SSLConfig {
        let backbone = Config(embedDim: o.embedDim, depth: o.depth, numHeads: o.heads, positionGrid: o.globalSize / 14,
                              interpolation: PositionInterpolation(offset: 0.1, antialias: false))
        var optim = OptimConfig()
        optim.lr = 1e-3
        optim.lastLayerLR = 1e-3
        return SSLConfig(backbone: backbone,
                         dinoHead: HeadConfig(inDim: o.embedDim, outDim: o.prototypes, hiddenDim: 2048, bottleneckDim: 256,
                                              layers: 3),
                         ibotHead: nil, loss: LossConfig(), optim: optim, teacherMomentum: 0.992, steps: o.repeats,
                         localCrops: o.localCrops, batchSize: o.batch, imageSize: o.globalSize)
    }

    /// Seeded crops, and masks as the official collate sizes them: B of the 2B global crops
    /// masked, crop i with int(N · (p_i + p_{i+1}) / 2) patches for p = linspace(0.1, 0.5, B + 1)
    /// (the middle of the official draw), placed by a seeded shuffle.
    public static func batch(_ o: Options, seed: UInt32 = 7) -> SSLBatch {
        var g = SyntheticInput(seed: seed)
        let global = (0..<(2 * o.batch * 3 * o.globalSize * o.globalSize)).map { _ in g.nextValue() }
        let local = (0..<(o.localCrops * o.batch * 3 * o.localSize * o.localSize)).map { _ in g.nextValue() }
        let n = (o.globalSize / 14) * (o.globalSize / 14)
        var masks = [Bool](repeating: false, count: 2 * o.batch * n)
        var crops = Array(0..<(2 * o.batch))
        crops.shuffle(using: &g)
        for i in 0..<o.batch {
            let lo = 0.1 + 0.4 * Double(i) / Double(o.batch), hi = 0.1 + 0.4 * Double(i + 1) / Double(o.batch)
            var patches = Array(0..<n)
            patches.shuffle(using: &g)
            for p in patches.prefix(Int(Double(n) * (lo + hi) / 2)) { masks[crops[i] * n + p] = true }
        }
        return SSLBatch(batchSize: o.batch, globalCrops: global, globalSize: o.globalSize, localCrops: local,
                        localCount: o.localCrops, localSize: o.localSize, masks: masks)
    }

    /// Runs `warmup` untimed and `repeats` timed steps of `trainer` on `batch`.
    public static func run(_ trainer: SSLTrainer, batch: SSLBatch, hyper: StepHyperparameters, repeats: Int,
                           warmup: Int, log: ((String) -> Void)? = nil) throws -> Result {
        var times: [Double] = [], cpuTimes: [Double] = [], phases: [StepTimings] = []
        for i in 0..<(warmup + repeats) {
            let start = monotonicSeconds(), cpuStart = processCPUSeconds()
            let terms = try trainer.step(batch, hyper: hyper)
            let ms = (monotonicSeconds() - start) * 1000
            let cpuMs = (processCPUSeconds() - cpuStart) * 1000
            log?("step \(i): \(String(format: "%.0f", ms)) ms, total loss \(String(format: "%.4f", terms.total))")
            if i >= warmup {
                times.append(ms)
                cpuTimes.append(cpuMs)
                phases.append(trainer.timings)
            }
        }
        func median(_ v: [Double]) -> Double {
            let s = v.sorted()
            return s.isEmpty ? 0 : (s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2)
        }
        let named: [(String, KeyPath<StepTimings, Double>)] = [
            ("teacher", \.teacher), ("student_forward", \.studentForward), ("losses", \.losses),
            ("backward", \.backward), ("update", \.update)]
        let c = trainer.model.config
        let modules = trainer.model.student.blocks
        let paramCount = modules.reduce(0) { $0 + $1.count }
        return Result(
            msPerStepMedian: (median(times) * 10).rounded() / 10, msPerStep: times.map { ($0 * 10).rounded() / 10 },
            cpuMsPerStepMedian: (median(cpuTimes) * 10).rounded() / 10,
            phasesMsMedian: Dictionary(uniqueKeysWithValues: named.map { name, key in
                (name, (median(phases.map { $0[keyPath: key] }) * 10000).rounded() / 10)
            }),
            threads: trainer.parallelism.threads, batch: batch.batchSize, globalCrops: "2x\(batch.globalSize)",
            localCrops: "\(batch.localCount)x\(batch.localSize)", prototypes: c.dinoHead.outDim,
            maskedPatches: batch.masks.filter { $0 }.count, studentParams: paramCount,
            workspaceMB: (Double(trainer.workspaceBytes) / 1e5).rounded() / 10,
            // student, teacher, gradients, two AdamW moments
            parameterMB: (Double(paramCount * 5 * 4) / 1e5).rounded() / 10)
    }
}

/// CPU seconds of all the process's threads.
func processCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
