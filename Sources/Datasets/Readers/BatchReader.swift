import Dispatch
import Foundation
import Images
import TensorStore
#if canImport(Glibc)
import Glibc
#endif

/// Reads files in batches one batch ahead: while the caller runs the model on batch k, batch k+1
/// is decoded and preprocessed by `threads` threads of its own, so decoding hides behind compute.
/// Files that fail to decode are reported with the batch, not thrown.
///
/// The decode threads run at a lower priority (nice +10, Linux): the model's threads work in
/// lock-step loops split evenly between them, so a decoder taking a core from one of them for a
/// time slice would stall all of them. At a lower priority the decoders mostly fill the gaps the
/// model leaves (waits at the end of loops, serial steps) and still get enough of the CPU to keep
/// a batch ahead; when they cannot, `next()` waits for them and the decoders have the CPU alone.
public final class BatchReader: @unchecked Sendable {
    /// One batch: inputs `start ..< start + count` of `paths`; a (kept, 3, H, W) float32 tensor
    /// of those that decoded; which inputs they were (indices into `paths`, ascending); and the
    /// files that did not decode, in input order.
    public struct Batch: Sendable {
        public let start: Int
        public let count: Int
        public let tensor: Tensor
        public let keptIndices: [Int]
        public let failures: [Failure]
    }

    /// A file that did not decode or preprocess, and the decoder's message.
    public struct Failure: Sendable, Equatable {
        public let path: String
        public let reason: String
    }

    public let paths: [String]
    public let preprocess: Preprocess
    public let batchSize: Int
    public let threads: Int
    /// Decoder warnings are errors (`--strict`).
    public let strict: Bool
    private let size: ImageSize
    private let table: [Float]
    private var nextStart: Int
    private var ahead: (done: DispatchGroup, slot: Slot)?

    /// Reads from input `start` on (a resumed run skips what it already has). The preset must
    /// give every image one size (a crop or an exact resize).
    public init(paths: [String], preprocess: Preprocess, batchSize: Int, threads: Int, start: Int = 0, strict: Bool = false) throws {
        guard let size = preprocess.fixedOutputSize, size.height > 0, size.width > 0 else {
            throw EvaluationError.invalidArgument(what: "preprocessing", detail: "a shorter-side resize without a crop gives each image its own size; add a crop or use an exact resize")
        }
        self.paths = paths
        self.preprocess = preprocess
        self.batchSize = Swift.max(1, batchSize)
        self.threads = Swift.max(1, threads)
        self.strict = strict
        self.size = size
        self.table = try preprocess.normalizationTable()
        self.nextStart = Swift.min(Swift.max(0, start), paths.count)
    }

    deinit {
        // A batch still being read must finish before its slot goes away.
        ahead?.done.wait()
    }

    /// The next batch, nil after the last; starts reading the one after it before returning.
    public func next() throws -> Batch? {
        if ahead == nil { startReadingAhead() }
        guard let current = ahead else { return nil }
        ahead = nil
        current.done.wait()
        startReadingAhead()
        return try current.slot.take()
    }

    private func startReadingAhead() {
        guard ahead == nil, nextStart < paths.count else { return }
        let start = nextStart, end = Swift.min(paths.count, start + batchSize)
        nextStart = end
        let count = end - start, plane = 3 * size.height * size.width
        let slot = Slot(start: start, paths: Array(paths[start..<end]), size: size), done = DispatchGroup()
        let workers = Swift.min(threads, count)
        let paths = self.paths, preprocess = self.preprocess, table = self.table, size = self.size, strict = self.strict
        for w in 0..<workers {
            done.enter()
            let thread = Thread {
                BatchReader.lowerPriority()
                for i in stride(from: w, to: count, by: workers) {
                    let path = paths[start + i]
                    do {
                        let image = try ImageDecoder.decode(path: path, strict: strict)
                        let out = try preprocess.outputSize(width: image.width, height: image.height)
                        guard out == size else {
                            throw EvaluationError.invalidArgument(what: path, detail: "comes out \(out), not \(size)")
                        }
                        // `write` runs the whole pipeline (resize, crop, normalise) on the decoded image.
                        try preprocess.write(image, table: table,
                                             into: UnsafeMutableBufferPointer(start: slot.floats + i * plane, count: plane))
                    } catch {
                        slot.reasons[i] = "\(error)"
                    }
                }
                done.leave()
            }
            thread.start()
        }
        ahead = (done, slot)
    }

    /// nice +10 for the calling thread; ignored where it cannot be set. (Linux keeps the nice
    /// value per thread, and `who` = 0 names the calling thread, not the whole process.)
    static func lowerPriority() {
        #if os(Linux)
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
        #endif
    }

    /// Where the decode threads leave a batch: each writes only its own images' slots; read
    /// only after all of them are done.
    private final class Slot: @unchecked Sendable {
        let start: Int
        let paths: [String]
        let size: ImageSize
        let storage: Storage
        let floats: UnsafeMutablePointer<Float>
        /// One slot per image, written by its decode thread only (raw memory: threads writing
        /// different elements of one Swift array would race on the array itself).
        let reasons: UnsafeMutablePointer<String?>

        var plane: Int { 3 * size.height * size.width }

        init(start: Int, paths: [String], size: ImageSize) {
            self.start = start
            self.paths = paths
            self.size = size
            storage = Storage(byteCount: Swift.max(1, paths.count * 3 * size.height * size.width) * 4)
            floats = storage.mutableBytes.bindMemory(to: Float.self).baseAddress!
            reasons = UnsafeMutablePointer<String?>.allocate(capacity: Swift.max(1, paths.count))
            reasons.initialize(repeating: nil, count: paths.count)
        }

        deinit {
            reasons.deinitialize(count: paths.count)
            reasons.deallocate()
        }

        func take() throws -> Batch {
            // Close the gaps left by failures so the tensor holds the successes in order.
            var kept: [Int] = [], failures: [Failure] = []
            for i in paths.indices {
                if let reason = reasons[i] {
                    failures.append(Failure(path: paths[i], reason: reason))
                    continue
                }
                if kept.count != i { (floats + kept.count * plane).update(from: floats + i * plane, count: plane) }
                kept.append(i)
            }
            let used = Storage(byteCount: kept.count * plane * 4)
            if !kept.isEmpty {
                used.mutableBytes.baseAddress!.copyMemory(from: floats, byteCount: kept.count * plane * 4)
            }
            let tensor = try Tensor(storage: used, dtype: .f32, shape: [kept.count, 3, size.height, size.width])
            return Batch(start: start, count: paths.count, tensor: tensor, keptIndices: kept.map { start + $0 },
                         failures: failures)
        }
    }
}
