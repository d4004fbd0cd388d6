import Foundation
import Kernels

/// DINOv2's weighted k-NN classifier (`dinov2/eval/knn.py`, `KnnModule`): features are
/// L2-normalised (`F.normalize`, norm clamped at 1e-12), each query's cosine similarities to
/// every training feature are computed, the `kMax = max(ks)` most similar neighbours kept, their
/// weights are `softmax(similarity / T)` over those `kMax`, and for each k the class score is
/// the sum of the first k weights of that class (equivalent to voting with exp(sim / T));
/// the prediction is the highest-scoring class.
///
/// Ties (documented, deterministic): neighbours with equal similarity are ranked lower training
/// index first (`torch.topk` leaves this order unspecified); equal class scores go to the lower
/// class index, as `torch.argmax` returns the first maximum. k larger than the training set is
/// clamped to its size.
///
/// Similarities are float32 products through BLAS (as `torch.mm` on float32 features), over
/// chunks of queries split across threads, to find the neighbours; the neighbours' similarities
/// (and every candidate within the float32 error bound of the k-th) are then recomputed in
/// double from the same float32 unit vectors, and ranking, softmax and sums use those. The
/// result therefore does not depend on BLAS's summation order or the thread count, and equals
/// a float64 reference (Scripts/fixtures/probe.py) exactly; it differs from float32 `torch.mm`
/// only where two neighbours are within float32 rounding of each other.
public struct KNN: Sendable {
    public var ks: [Int]
    public var temperature: Double
    /// Queries per similarity block (a block holds chunk × N floats).
    public var chunk: Int

    public init(ks: [Int] = [10, 20, 100, 200], temperature: Double = 0.07, chunk: Int = 128) {
        self.ks = ks
        self.temperature = temperature
        self.chunk = chunk
    }

    /// Predicted labels for every query and every k in `ks` (in the order of `ks`).
    public func predict(train: FeatureMatrix, labels: [Int], queries: FeatureMatrix,
                        parallelism: Parallelism = .fromEnvironment,
                        progress: ((Int) -> Void)? = nil) throws -> KNNPredictions {
        guard labels.count == train.rows else {
            throw EvaluationError.badFeatures(what: "training labels", detail: "\(labels.count) labels for \(train.rows) feature rows")
        }
        guard train.rows > 0 else { throw EvaluationError.badFeatures(what: "training features", detail: "no rows") }
        guard queries.columns == train.columns else {
            throw EvaluationError.badFeatures(what: "test features", detail: "width \(queries.columns), training features have width \(train.columns)")
        }
        guard !ks.isEmpty, ks.allSatisfy({ $0 > 0 }) else {
            throw EvaluationError.invalidArgument(what: "k", detail: "\(ks) must be positive integers")
        }
        guard temperature > 0, temperature.isFinite else {
            throw EvaluationError.invalidArgument(what: "temperature", detail: "\(temperature) must be positive")
        }
        let classes = Array(Set(labels)).sorted()
        let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
        let trainClass = labels.map { index[$0]! }
        let kMax = Swift.min(ks.max()!, train.rows)
        let effectiveKs = ks.map { Swift.min($0, train.rows) }

        let trainN = KNN.normalized(train)
        let queryN = KNN.normalized(queries)
        let n = train.rows, d = train.columns, q = queries.rows, c = classes.count
        var predicted = [Int32](repeating: 0, count: q * ks.count)
        let chunk = Swift.max(1, self.chunk)
        let chunks = (q + chunk - 1) / chunk
        let temperature = self.temperature

        trainN.withUnsafeBufferPointer { tp in
            queryN.withUnsafeBufferPointer { qp in
                predicted.withUnsafeMutableBufferPointer { pp in
                    let tBase = UncheckedPointer(UnsafeMutablePointer(mutating: tp.baseAddress!))
                    let qBase = UncheckedPointer(UnsafeMutablePointer(mutating: qp.baseAddress!))
                    let out = UncheckedPointer(pp.baseAddress!)
                    // Chunks in groups of `threads`, so progress can be reported between groups.
                    let group = Swift.max(1, parallelism.threads)
                    var first = 0
                    while first < chunks {
                        let count = Swift.min(group, chunks - first)
                        let firstChunk = first
                        parallelFor(count, Parallelism(threads: count)) { range in
                            for ci in range {
                                let q0 = (firstChunk + ci) * chunk, rows = Swift.min(chunk, q - q0)
                                let sims = UnsafeMutablePointer<Float>.allocate(capacity: rows * n)
                                defer { sims.deallocate() }
                                sgemm(transB: true, m: rows, n: n, k: d, a: qBase.pointer + q0 * d, lda: d,
                                      b: tBase.pointer, ldb: d, c: sims, ldc: n)
                                var scores = [Double](repeating: 0, count: c)
                                for r in 0..<rows {
                                    let (top, exact) = KNN.neighbours(sims: sims + r * n, count: n, k: kMax,
                                                                      query: qBase.pointer + (q0 + r) * d,
                                                                      train: tBase.pointer, width: d)
                                    KNN.vote(top: top, sims: exact, trainClass: trainClass, ks: effectiveKs,
                                             temperature: temperature, scores: &scores,
                                             into: out.pointer + (q0 + r) * effectiveKs.count)
                                }
                            }
                        }
                        first += count
                        progress?(Swift.min(q, first * chunk))
                    }
                }
            }
        }
        var byK: [[Int]] = []
        for j in 0..<ks.count { byK.append((0..<q).map { classes[Int(predicted[$0 * ks.count + j])] }) }
        return KNNPredictions(ks: ks, predictions: byK)
    }

    /// `F.normalize(x, dim=1)`: x / max(‖x‖₂, 1e-12), per row.
    static func normalized(_ x: FeatureMatrix) -> [Float] {
        var out = x.values
        let d = x.columns
        out.withUnsafeMutableBufferPointer { o in
            for r in 0..<x.rows {
                var s: Double = 0
                for j in 0..<d { let v = Double(o[r * d + j]); s += v * v }
                let norm = Float(Swift.max(s.squareRoot(), 1e-12))
                for j in 0..<d { o[r * d + j] /= norm }
            }
        }
        return out
    }

    /// Indices of the k largest values, largest first; equal values lower index first.
    static func topK(_ values: UnsafePointer<Float>, count: Int, k: Int) -> [Int] {
        // A min-heap of the best k so far, keyed so that the root is the worst kept entry.
        func worse(_ a: Int, _ b: Int) -> Bool {
            values[a] < values[b] || (values[a] == values[b] && a > b)
        }
        var heap: [Int] = []
        heap.reserveCapacity(k)
        func siftDown(_ start: Int) {
            var i = start
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count && worse(heap[l], heap[m]) { m = l }
                if r < heap.count && worse(heap[r], heap[m]) { m = r }
                if m == i { return }
                heap.swapAt(i, m)
                i = m
            }
        }
        for i in 0..<count {
            if heap.count < k {
                heap.append(i)
                var j = heap.count - 1
                while j > 0 {
                    let p = (j - 1) / 2
                    guard worse(heap[j], heap[p]) else { break }
                    heap.swapAt(j, p)
                    j = p
                }
            } else if worse(heap[0], i) {
                heap[0] = i
                siftDown(0)
            }
        }
        return heap.sorted { worse($1, $0) }
    }

    /// The k nearest neighbours by double-precision similarity, best first (equal similarities
    /// lower index first), with those similarities. The float32 `sims` row only narrows the
    /// search: every index whose float32 similarity is within the float32 error bound of the
    /// k-th largest is a candidate, so the double ranking is that of all N.
    static func neighbours(sims: UnsafePointer<Float>, count n: Int, k: Int, query: UnsafePointer<Float>,
                           train: UnsafePointer<Float>, width d: Int) -> (top: [Int], sims: [Double]) {
        let top32 = topK(sims, count: n, k: k)
        guard let last = top32.last else { return ([], []) }
        // |float32 dot − exact| ≤ d·2⁻²⁴ for unit vectors, on each side: 4·d·2⁻²⁴ is safe.
        let threshold = sims[last] - Float(4 * Double(d) * 0x1p-24)
        var candidates: [(index: Int, sim: Double)] = []
        candidates.reserveCapacity(k + 16)
        for j in 0..<n where sims[j] >= threshold {
            var s = 0.0
            let t = train + j * d
            for i in 0..<d { s += Double(query[i]) * Double(t[i]) }
            candidates.append((j, s))
        }
        candidates.sort { $0.sim > $1.sim || ($0.sim == $1.sim && $0.index < $1.index) }
        let kept = candidates.prefix(k)
        return (kept.map(\.index), kept.map(\.sim))
    }

    /// Softmax weights over the kMax neighbours, per-class sums of the first k, argmax per k.
    static func vote(top: [Int], sims: [Double], trainClass: [Int], ks: [Int], temperature: Double,
                     scores: inout [Double], into out: UnsafeMutablePointer<Int32>) {
        guard let maxSim = sims.first else { return }
        var weights = sims.map { Foundation.exp(($0 - maxSim) / temperature) }
        let total = weights.reduce(0, +)
        for i in weights.indices { weights[i] /= total }
        for (j, k) in ks.enumerated() {
            for i in scores.indices { scores[i] = 0 }
            for i in 0..<k { scores[trainClass[top[i]]] += weights[i] }
            var best = 0
            for cls in 1..<scores.count where scores[cls] > scores[best] { best = cls }
            out[j] = Int32(best)
        }
    }
}

/// k-NN predictions: `predictions[j]` holds one label per query for `ks[j]`.
public struct KNNPredictions: Sendable, Equatable {
    public let ks: [Int]
    public let predictions: [[Int]]

    public func accuracies(labels: [Int]) -> [Double] {
        predictions.map { Classification.accuracy(predicted: $0, actual: labels) }
    }
}
