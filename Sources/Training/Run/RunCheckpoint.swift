import Formats
import Foundation
import TensorStore

/// A run's checkpoints: `run/checkpoints/step-000120.safetensors`, each complete on its own —
/// student, teacher, heads and centres under the training-checkpoint names, AdamW's moments
/// under `optimizer.exp_avg.<module>.*` / `optimizer.exp_avg_sq.<module>.*`, and in the metadata
/// the step, AdamW's step count, the seed and the run config. Files are written atomically
/// (temporary file, fsync, rename), then `run/checkpoints/latest` (the file name) likewise, so a
/// kill at any moment leaves `latest` naming a complete checkpoint. Random draws are keyed by
/// (seed, step): no generator state is stored.
public enum RunCheckpoint {
    public static let format = "dinokit-sslrun-checkpoint/1"
    public static let folder = "checkpoints"
    public static let latestFile = "latest"

    public static func fileName(step: Int) -> String {
        let s = String(step)
        return "step-" + String(repeating: "0", count: Swift.max(0, 6 - s.count)) + s + ".safetensors"
    }

    /// What a checkpoint restores besides the model.
    public struct Info: Sendable, Equatable {
        /// Steps done: the next step to run.
        public var step: Int
        public var optimizerSteps: Int
        public var seed: UInt64
        public var config: SSLRunConfig
        /// The data's steps per epoch when the checkpoint was written (0: not recorded): the
        /// schedules depend on it, so a resume over different data would not repeat the run.
        public var stepsPerEpoch = 0
    }

    /// The whole trainer state as one store (the centres' queued statistics must be applied first:
    /// `SSLRun` applies them after every step).
    public static func store(trainer: SSLTrainer, info: Info) throws -> TensorStore {
        var store = try trainer.model.export()
        for (i, (name, _)) in trainer.model.student.named.enumerated() {
            let (m, v) = trainer.optimizer.moments[i]
            try m.export(into: &store, prefix: "optimizer.exp_avg.\(name).")
            try v.export(into: &store, prefix: "optimizer.exp_avg_sq.\(name).")
        }
        store.metadata["format"] = format
        store.metadata["step"] = String(info.step)
        store.metadata["optimizer_steps"] = String(info.optimizerSteps)
        store.metadata["seed"] = String(info.seed)
        store.metadata["num_heads"] = String(trainer.model.config.backbone.numHeads)
        store.metadata["steps_per_epoch"] = String(info.stepsPerEpoch)
        store.metadata["config"] = String(decoding: try info.config.encoded(), as: UTF8.self)
        return store
    }

    /// Writes the checkpoint, points `latest` at it, and removes the oldest beyond `keep`.
    @discardableResult
    public static func save(trainer: SSLTrainer, info: Info, run: String, keep: Int) throws -> String {
        let dir = (run as NSString).appendingPathComponent(folder)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let name = fileName(step: info.step)
        let path = (dir as NSString).appendingPathComponent(name)
        try Safetensors.write(try store(trainer: trainer, info: info), to: path)
        try AtomicFileWriter.write(to: (dir as NSString).appendingPathComponent(latestFile)) { try $0.write(name + "\n") }
        let all = try steps(run: run)
        for old in all.dropLast(Swift.max(keep, 1)) where old.name != name {
            try? FileManager.default.removeItem(atPath: (dir as NSString).appendingPathComponent(old.name))
        }
        return path
    }

    /// Complete checkpoints in the run folder, oldest first (temporary files are not listed).
    public static func steps(run: String) throws -> [(step: Int, name: String)] {
        let dir = (run as NSString).appendingPathComponent(folder)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.compactMap { n -> (Int, String)? in
            guard n.hasPrefix("step-"), n.hasSuffix(".safetensors"), let s = Int(n.dropFirst(5).dropLast(12)) else { return nil }
            return (s, n)
        }.sorted { $0.0 < $1.0 }
    }

    /// The checkpoint `latest` names, or the one of step `step`.
    public static func path(run: String, step: Int? = nil) throws -> String {
        let dir = (run as NSString).appendingPathComponent(folder)
        if let step {
            let p = (dir as NSString).appendingPathComponent(fileName(step: step))
            guard FileManager.default.fileExists(atPath: p) else {
                let have = (try steps(run: run)).map { String($0.step) }.joined(separator: ", ")
                throw SSLRunError.runFolder(path: run, message: "no checkpoint of step \(step) (have: \(have.isEmpty ? "none" : have))")
            }
            return p
        }
        let pointer = (dir as NSString).appendingPathComponent(latestFile)
        guard let bytes = try? RegularFile.read(pointer, limit: 4096), case let text = String(decoding: bytes, as: UTF8.self) else {
            throw SSLRunError.runFolder(path: run, message: "no checkpoints/latest: not a DinoKit run folder, or no checkpoint written yet")
        }
        let name = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard name.hasPrefix("step-"), name.hasSuffix(".safetensors"), !name.contains("/") else {
            throw SSLRunError.checkpoint(path: pointer, message: "'\(name)' is not a checkpoint file name")
        }
        return (dir as NSString).appendingPathComponent(name)
    }

    /// Reads a checkpoint: the model state (training names), the moments and the info.
    public static func read(path: String) throws -> (model: TensorStore, optimizer: TensorStore, info: Info) {
        let store = try Safetensors.read(path: path)
        func meta(_ key: String) throws -> String {
            guard let v = store.metadata[key] else { throw SSLRunError.checkpoint(path: path, message: "metadata '\(key)' is missing") }
            return v
        }
        guard try meta("format") == format else {
            throw SSLRunError.checkpoint(path: path, message: "format '\(store.metadata["format"] ?? "")' is not \(format)")
        }
        guard let step = Int(try meta("step")), let opt = Int(try meta("optimizer_steps")), let seed = UInt64(try meta("seed")),
              step >= 0, opt >= 0 else {
            throw SSLRunError.checkpoint(path: path, message: "step, optimizer_steps or seed is not a number")
        }
        let config = try SSLRunConfig.load(json: Data(try meta("config").utf8), file: path + " (config)")
        var model = TensorStore(), optimizer = TensorStore()
        model.metadata = store.metadata
        for (name, t) in store.tensors {
            if name.hasPrefix("optimizer.") { try optimizer.insert(t, named: name) } else { try model.insert(t, named: name) }
        }
        let perEpoch = store.metadata["steps_per_epoch"].flatMap { Int($0) } ?? 0
        return (model, optimizer, Info(step: step, optimizerSteps: opt, seed: seed, config: config, stepsPerEpoch: perEpoch))
    }

    /// Puts moments and the step count back into a trainer built on the checkpoint's model.
    public static func restoreOptimizer(_ trainer: SSLTrainer, from optimizer: TensorStore, info: Info, file: String) throws {
        for (i, (name, _)) in trainer.model.student.named.enumerated() {
            let (m, v) = trainer.optimizer.moments[i]
            try m.load(from: optimizer, prefix: "optimizer.exp_avg.\(name).", file: file)
            try v.load(from: optimizer, prefix: "optimizer.exp_avg_sq.\(name).", file: file)
        }
        trainer.restoreOptimizerStepCount(info.optimizerSteps)
    }
}
