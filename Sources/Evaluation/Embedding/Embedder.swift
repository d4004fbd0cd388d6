import Datasets
import DINOv2
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Formats
import Images
import TensorStore

/// `dinokit embed`'s engine: features of many image files into one float32 `.npy`, (N, …) in
/// input order (files that fail to decode are skipped and reported, or fatal with `strict`).
///
/// Resumable. Rows are appended batch by batch to `<out>.partial` (raw float32), and every
/// `recordInterval` seconds (and when a run stops early) the rows are fsync'd and
/// `<out>.partial.json` — the run's settings key, the inputs consumed, the byte length of the rows
/// that belong to them and the skipped inputs — is replaced atomically. A record per batch would
/// cost two or three fsyncs per batch, several per cent of a run; an interrupted run redoes at
/// most `recordInterval` seconds of work.
/// The record is written only after the rows it counts are on disk, so after a crash the partial
/// file holds at least what the record says (extra bytes from a batch whose record never landed
/// are cut off). A run with the same key continues where the record ends; another key starts
/// over. At the end the `.npy` is written atomically from the partial file and both are removed.
public struct Embedder {
    /// Seconds between progress records.
    public static let recordInterval = 2.0

    public var model: Model
    public var preprocess: Preprocess
    public var output: EmbedOutputKind
    public var batchSize: Int
    public var decodeThreads: Int

    public init(model: Model, preprocess: Preprocess, output: EmbedOutputKind, batchSize: Int = 32, decodeThreads: Int? = nil) {
        self.model = model
        self.preprocess = preprocess
        self.output = output
        self.batchSize = Swift.max(1, batchSize)
        self.decodeThreads = Swift.max(1, decodeThreads ?? model.parallelism.threads)
    }

    /// A file that was skipped, and why.
    public struct Failure: Codable, Sendable, Equatable {
        public var path: String
        public var reason: String
    }

    /// What a run produced.
    public struct Run: Sendable {
        /// False when stopped early by `stopAfterBatches` (the partial output is kept for resuming).
        public var completed: Bool
        /// The shape of one image's features; the `.npy` is (rows, rowShape…).
        public var rowShape: [Int]
        public var rows: Int
        /// Indices into the input paths of the rows, in order.
        public var keptIndices: [Int]
        public var failures: [Failure]
        /// Inputs already done by an earlier run when this one started (0 for a fresh run).
        public var resumedFrom: Int
    }

    /// Things worth telling the user while running.
    public enum Event {
        case resuming(inputsDone: Int, of: Int)
        case startingOver(reason: String)
        case skipped(Failure)
        case progress(inputsDone: Int)
    }

    /// The partial-output record (see the type's comment).
    struct Progress: Codable {
        var format = "dinokit-embed-partial-1"
        var key: String
        var inputsDone: Int
        var rows: Int
        var bytes: Int
        var rowShape: [Int]
        /// Indices of the skipped inputs (with `failures`, in the same order): every other input
        /// below `inputsDone` has a row, so the record stays small however many files there are.
        var failedIndices: [Int]
        var failures: [Failure]

        var kept: [Int] {
            let failed = Set(failedIndices)
            return (0..<inputsDone).filter { !failed.contains($0) }
        }
    }

    public static func partialPath(_ out: String) -> String { out + ".partial" }
    public static func progressPath(_ out: String) -> String { out + ".partial.json" }

    /// The resume key for a run: everything that changes the bytes of the output. `weightsID`
    /// identifies the weights (the CLI passes path, size and modification time).
    public func key(paths: [String], weightsID: String) -> String {
        var h = SHA256()
        h.update(Array(paths.joined(separator: "\n").utf8))
        return [weightsID, "precision=\(model.precision.rawValue)", "output=\(output.rawValue)", preprocess.summary,
                "batch=\(batchSize)", "files=\(paths.count):\(h.hexDigest())"].joined(separator: " | ")
    }

    /// Embeds `paths` into `out`. `key` is `key(paths:weightsID:)`; `stopAfterBatches` stops
    /// after that many batches of this run, as an interruption would (for tests).
    public func run(paths: [String], out: String, key: String, strict: Bool = false, stopAfterBatches: Int? = nil,
                    events: (Event) -> Void = { _ in }) throws -> Run {
        guard let size = preprocess.fixedOutputSize else {
            throw EvaluationError.invalidArgument(what: "preprocessing", detail: "a shorter-side resize without a crop gives each image its own size; add a crop or use an exact resize")
        }
        let p = model.config.patchSize
        guard size.height >= p, size.width >= p, size.height % p == 0, size.width % p == 0 else {
            throw EvaluationError.invalidArgument(what: "--size", detail: "images come out \(size.width)x\(size.height); both sides must be multiples of the patch size \(p)")
        }
        let rowShape = output.rowShape(embedDim: model.config.embedDim, patches: (size.height / p) * (size.width / p))
        let rowBytes = rowShape.reduce(1, *) * 4
        let partial = Embedder.partialPath(out), record = Embedder.progressPath(out)

        var state = Progress(key: key, inputsDone: 0, rows: 0, bytes: 0, rowShape: rowShape, failedIndices: [], failures: [])
        if let previous = Embedder.readProgress(record) {
            let partialSize = Embedder.fileSize(partial)
            if previous.key != key {
                events(.startingOver(reason: "\(record) was made with other arguments (weights, precision, output, preprocessing, batch or files)"))
            } else if previous.rowShape != rowShape || previous.bytes != previous.rows * rowBytes
                        || previous.inputsDone > paths.count || (partialSize ?? -1) < previous.bytes
                        || previous.failedIndices.count != previous.failures.count
                        || previous.rows + previous.failedIndices.count != previous.inputsDone {
                events(.startingOver(reason: "\(partial) is shorter than \(record) says or inconsistent with it"))
            } else {
                state = previous
                if state.inputsDone > 0 { events(.resuming(inputsDone: state.inputsDone, of: paths.count)) }
            }
        }
        if state.inputsDone == 0 {
            try? FileManager.default.removeItem(atPath: record)
            try? FileManager.default.removeItem(atPath: partial)
        }
        let resumedFrom = state.inputsDone
        let sink = try PartialFile(path: partial, keeping: state.bytes)

        let reader = try BatchReader(paths: paths, preprocess: preprocess, batchSize: batchSize, threads: decodeThreads,
                                 start: state.inputsDone, strict: strict)
        let workspace = Workspace()
        var kept = state.kept
        var batches = 0
        var lastRecord = ProcessInfo.processInfo.systemUptime
        func saveProgress() throws {
            try sink.sync()
            try Embedder.writeProgress(state, to: record)
            lastRecord = ProcessInfo.processInfo.systemUptime
        }
        while let batch = try reader.next() {
            if let stop = stopAfterBatches, batches >= stop {
                try saveProgress()
                return Run(completed: false, rowShape: rowShape, rows: state.rows, keptIndices: kept,
                           failures: state.failures, resumedFrom: resumedFrom)
            }
            let keptInBatch = Set(batch.keptIndices)
            state.failedIndices += (batch.start..<(batch.start + batch.count)).filter { !keptInBatch.contains($0) }
            for f in batch.failures {
                let failure = Failure(path: f.path, reason: f.reason)
                if strict {
                    // The decoder's message usually starts with the path already.
                    let prefix = f.path + ": "
                    let reason = f.reason.hasPrefix(prefix) ? String(f.reason.dropFirst(prefix.count)) : f.reason
                    // The rows so far stay resumable (this batch is redone once the file is fixed);
                    // with no rows yet there is nothing worth keeping.
                    if state.rows > 0 { try saveProgress() } else {
                        try? sink.close()
                        try? FileManager.default.removeItem(atPath: partial)
                        try? FileManager.default.removeItem(atPath: record)
                    }
                    throw EvaluationError.badDataset(path: f.path, detail: "cannot be read (--strict): \(reason)")
                }
                state.failures.append(failure)
                events(.skipped(failure))
            }
            if !batch.keptIndices.isEmpty {
                let rows = try output.features(model, batch.tensor, workspace: workspace)
                guard rows.count == batch.keptIndices.count * rowBytes / 4 else {
                    throw EvaluationError.badFeatures(what: "batch at input \(batch.start)", detail: "\(rows.count) floats for \(batch.keptIndices.count) images")
                }
                try sink.append(rows)
            }
            state.inputsDone = batch.start + batch.count
            state.rows += batch.keptIndices.count
            state.bytes = state.rows * rowBytes
            kept += batch.keptIndices
            if ProcessInfo.processInfo.systemUptime - lastRecord >= Embedder.recordInterval { try saveProgress() }
            batches += 1
            events(.progress(inputsDone: state.inputsDone))
        }
        try sink.close()
        guard state.rows > 0 || paths.isEmpty else {
            // Nothing to write: an empty (0, D) array would look like success to the next tool.
            try? FileManager.default.removeItem(atPath: record)
            try? FileManager.default.removeItem(atPath: partial)
            let first = state.failures.first.map { $0.reason.hasPrefix($0.path) ? $0.reason : "\($0.path): \($0.reason)" } ?? "no rows"
            throw EvaluationError.nothingProduced(out: out, inputs: paths.count, first: first)
        }
        try Embedder.finalize(partial: partial, rows: state.rows, rowShape: rowShape, out: out)
        try? FileManager.default.removeItem(atPath: record)
        try? FileManager.default.removeItem(atPath: partial)
        return Run(completed: true, rowShape: rowShape, rows: state.rows, keptIndices: kept,
                   failures: state.failures, resumedFrom: resumedFrom)
    }

    /// The `.npy` from the partial rows, atomically (the partial file is mapped and copied by the
    /// kernel, not read into memory).
    static func finalize(partial: String, rows: Int, rowShape: [Int], out: String) throws {
        let shape = Shape([rows] + rowShape)
        let tensor: Tensor
        if rows == 0 || rowShape.contains(0) {
            tensor = try Tensor(storage: Storage(byteCount: 0), dtype: .f32, shape: shape)
        } else {
            let file = try MappedFile(path: partial)
            let bytes = rows * rowShape.reduce(1, *) * 4
            tensor = try Tensor(storage: Storage(file: file, offset: 0, length: bytes), dtype: .f32, shape: shape)
        }
        try NPY.write(tensor, to: out)
    }

    static func readProgress(_ path: String) -> Progress? {
        guard let bytes = try? RegularFile.read(path) else { return nil }
        let data = Data(bytes)
        return try? JSONDecoder().decode(Progress.self, from: data)
    }

    static func writeProgress(_ p: Progress, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(p)
        try AtomicFileWriter.write(to: path) { try $0.write([UInt8](data)) }
    }

    static func fileSize(_ path: String) -> Int? {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue
    }
}

/// The growing raw-rows file: opened for appending after cutting it to the bytes the progress
/// record vouches for.
final class PartialFile {
    let path: String
    private var fd: Int32

    init(path: String, keeping bytes: Int) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT, 0o644)
        guard fd >= 0 else { throw EvaluationError.io(path: path, detail: "cannot open: \(String(cString: strerror(errno)))") }
        guard ftruncate(fd, off_t(bytes)) == 0, lseek(fd, off_t(bytes), SEEK_SET) == off_t(bytes) else {
            let message = String(cString: strerror(errno))
            Glibc.close(fd)
            throw EvaluationError.io(path: path, detail: "cannot cut to \(bytes) bytes: \(message)")
        }
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    func append(_ values: [Float]) throws {
        try values.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw EvaluationError.io(path: path, detail: "write failed: \(String(cString: strerror(errno)))")
                }
                done += n
            }
        }
    }

    func sync() throws {
        guard fsync(fd) == 0 else { throw EvaluationError.io(path: path, detail: "fsync failed: \(String(cString: strerror(errno)))") }
    }

    func close() throws {
        if fd >= 0 { _ = Glibc.close(fd); fd = -1 }
    }
}

extension Embedder {
    /// `feats.npy` -> `feats.files.txt`: the files whose rows are in the output, one per line.
    public static func fileListPath(_ out: String) -> String { sidecar(out, suffix: ".files.txt") }

    /// `labels.npy` -> `labels.classes.txt`: class names, line i naming label i.
    public static func classesPath(labels: String) -> String { sidecar(labels, suffix: ".classes.txt") }

    static func sidecar(_ path: String, suffix: String) -> String {
        (path.hasSuffix(".npy") ? String(path.dropLast(4)) : path) + suffix
    }

    /// Writes what goes beside a finished run's `.npy` (atomically): the file list, and for an
    /// ImageFolder run the labels of the kept files (int64 `.npy`) and the class names.
    /// Returns the file list's path.
    @discardableResult
    public static func writeSidecars(_ run: Run, paths: [String], out: String,
                                     labels: (path: String, values: [Int], classes: [String])? = nil) throws -> String {
        let listPath = fileListPath(out)
        try writeLines(run.keptIndices.map { paths[$0] }, to: listPath)
        if let labels {
            guard labels.values.count == paths.count else {
                throw EvaluationError.invalidArgument(what: "labels", detail: "\(labels.values.count) labels for \(paths.count) files")
            }
            try LabelFile.write(run.keptIndices.map { labels.values[$0] }, to: labels.path)
            try writeLines(labels.classes, to: classesPath(labels: labels.path))
        }
        return listPath
    }

    /// One line per entry, atomically.
    static func writeLines(_ lines: [String], to path: String) throws {
        try AtomicFileWriter.write(to: path) { try $0.write(lines.map { $0 + "\n" }.joined()) }
    }
}
