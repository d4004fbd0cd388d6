import Foundation
import TensorStore

/// One line of `run/metrics.jsonl`: a step's loss terms (as `SSLMetaArch.forward_backward` adds
/// them), its schedule values, and the collapse signals; `knn` on the last step of an epoch
/// when a labelled folder is given.
public struct StepMetrics: Codable, Sendable, Equatable {
    public var step: Int
    public var epoch: Int
    public var total: Double
    public var dinoLocal: Double
    public var dinoGlobal: Double
    public var koleo: Double
    public var ibot: Double
    public var lr: Double
    public var lastLayerLR: Double
    public var wd: Double
    public var teacherMomentum: Double
    public var teacherTemp: Double
    public var teacherEntropy: Double
    public var centerNorm: Double
    public var centerMean: Double
    public var centerStd: Double
    public var seconds: Double
    public var knn: Double?

    enum CodingKeys: String, CodingKey {
        case step, epoch, total, dinoLocal = "dino_local", dinoGlobal = "dino_global", koleo, ibot, lr
        case lastLayerLR = "last_layer_lr", wd, teacherMomentum = "teacher_momentum", teacherTemp = "teacher_temp"
        case teacherEntropy = "teacher_entropy", centerNorm = "center_norm", centerMean = "center_mean"
        case centerStd = "center_std", seconds, knn
    }

    /// The values a resumed run must reproduce exactly (everything but the wall time).
    public var deterministic: [Double] {
        [Double(step), Double(epoch), total, dinoLocal, dinoGlobal, koleo, ibot, lr, lastLayerLR, wd, teacherMomentum,
         teacherTemp, teacherEntropy, centerNorm, centerMean, centerStd]
    }
}

/// `run/metrics.jsonl`: appended line by line (one `write` per line, flushed), read back for the
/// curves and on resume, when lines past the checkpoint's step are dropped.
public enum MetricsLog {
    public static let fileName = "metrics.jsonl"

    public static func read(run: String) -> [StepMetrics] {
        let path = (run as NSString).appendingPathComponent(fileName)
        guard let bytes = try? RegularFile.read(path) else { return [] }
        let text = String(decoding: bytes, as: UTF8.self)
        let d = JSONDecoder()
        // A line cut by a kill is not valid JSON: skipped.
        return text.split(separator: "\n").compactMap { try? d.decode(StepMetrics.self, from: Data($0.utf8)) }
    }

    /// Keeps the lines of steps before `step` (rewritten atomically).
    public static func truncate(run: String, before step: Int) throws {
        let kept = read(run: run).filter { $0.step < step }
        let path = (run as NSString).appendingPathComponent(fileName)
        try AtomicFileWriter.write(to: path) { w in
            for m in kept { try w.write(try line(m)) }
        }
    }

    public static func line(_ m: StepMetrics) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try e.encode(m), as: UTF8.self) + "\n"
    }

    public static func append(_ m: StepMetrics, run: String) throws {
        let path = (run as NSString).appendingPathComponent(fileName)
        if !FileManager.default.fileExists(atPath: path) { FileManager.default.createFile(atPath: path, contents: nil) }
        guard let h = FileHandle(forWritingAtPath: path) else { throw SSLRunError.runFolder(path: path, message: "cannot open for appending") }
        defer { try? h.close() }
        try h.seekToEnd()
        try h.write(contentsOf: Data(try line(m).utf8))
    }
}
