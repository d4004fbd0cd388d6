import Datasets
import Foundation
import Images

/// A train/validation partition of a labelled image set, by index into it.
public struct DataSplit: Sendable, Equatable {
    public var train: [Int]
    public var validation: [Int]

    public init(train: [Int], validation: [Int]) {
        self.train = train
        self.validation = validation
    }

    /// A seeded stratified split (what sklearn's `train_test_split(stratify=…)` aims at): each
    /// class's images are shuffled with a generator keyed by (seed, class) and round(fraction · n)
    /// of them go to validation — at least one and at most n − 1 when a class has two or more
    /// images and the fraction is positive, so every class is seen in training. `indices` are the
    /// candidates (e.g. the readable images), `labels` the labels of the whole set. Both halves
    /// come back in ascending order. The same seed and files give the same split on any machine.
    public static func stratified(indices: [Int], labels: [Int], classes: Int, fraction: Double, seed: UInt64) -> DataSplit {
        var byClass = [[Int]](repeating: [], count: classes)
        for i in indices where labels[i] >= 0 && labels[i] < classes { byClass[labels[i]].append(i) }
        var train: [Int] = [], validation: [Int] = []
        for (c, members) in byClass.enumerated() {
            var m = members
            var rng = RunRandom(seed: seed, 0x5350_4C54, UInt64(c)) // "SPLT"
            shuffle(&m, rng: &rng)
            var v = Int((fraction * Double(m.count)).rounded(.toNearestOrEven))
            if fraction > 0, m.count >= 2 { v = Swift.min(Swift.max(v, 1), m.count - 1) }
            v = Swift.min(Swift.max(v, 0), m.count)
            validation += m[..<v]
            train += m[v...]
        }
        return DataSplit(train: train.sorted(), validation: validation.sorted())
    }

    /// Fisher–Yates from the end, drawing j uniformly in 0...i.
    static func shuffle(_ a: inout [Int], rng: inout RunRandom) {
        guard a.count > 1 else { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) {
            let j = Int(rng.next() % UInt64(i + 1))
            a.swapAt(i, j)
        }
    }

    /// A seeded permutation of 0..<n: epoch `epoch`'s visiting order.
    public static func epochOrder(count n: Int, seed: UInt64, epoch: Int) -> [Int] {
        var order = Array(0..<n)
        var rng = RunRandom(seed: seed, 0x4550_4F43, UInt64(epoch)) // "EPOC"
        shuffle(&order, rng: &rng)
        return order
    }
}

/// A file that could not be used, and why. Written `{"file", "reason"}` (split.json,
/// summary.json, `train finetune --json`), as every command reports skipped files.
public struct SkippedImage: Sendable, Equatable, Codable {
    public var path: String
    public var reason: String

    enum CodingKeys: String, CodingKey {
        case path = "file", reason
    }

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
}

/// Some images of a labelled set, in the order of `indices`.
public struct ImageSubset: LabeledImages {
    public let base: any LabeledImages
    public let indices: [Int]

    public init(base: any LabeledImages, indices: [Int]) {
        self.base = base
        self.indices = indices
    }

    public var classes: [String] { base.classes }
    public var labels: [Int] { indices.map { base.labels[$0] } }
    public var source: String { base.source }
    public func image(at index: Int) throws -> RGBImage { try base.image(at: indices[index]) }
    public func fingerprint() throws -> String { try base.fingerprint() + ":" + indices.map(String.init).joined(separator: ",") }
}

extension ImageFolder {
    /// Decodes every image once (on `threads` threads) and sorts them into the readable ones and
    /// the ones that fail, with the decoder's message.
    public func scanReadable(threads: Int) -> (readable: [Int], skipped: [SkippedImage]) {
        let n = count
        let box = ScanResults(count: n)
        let workers = Swift.max(1, Swift.min(threads, n))
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            for i in stride(from: w, to: n, by: workers) {
                do { _ = try self.image(at: i) } catch {
                    // Decoder messages often start with the path, which the report already gives.
                    var reason = String(describing: error)
                    if reason.hasPrefix(self.paths[i] + ": ") { reason.removeFirst(self.paths[i].count + 2) }
                    box.set(i, reason)
                }
            }
        }
        var readable: [Int] = [], skipped: [SkippedImage] = []
        for i in 0..<n {
            if let reason = box.get(i) { skipped.append(SkippedImage(path: paths[i], reason: reason)) } else { readable.append(i) }
        }
        return (readable, skipped)
    }
}

/// Per-image failure messages written by the scan's workers (each touches only its own slots).
private final class ScanResults: @unchecked Sendable {
    private var reasons: [String?]
    private let lock = NSLock()
    init(count: Int) { reasons = [String?](repeating: nil, count: count) }
    func set(_ i: Int, _ reason: String) { lock.lock(); reasons[i] = reason; lock.unlock() }
    func get(_ i: Int) -> String? { lock.lock(); defer { lock.unlock() }; return reasons[i] }
}
