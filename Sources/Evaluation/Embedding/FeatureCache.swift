import Datasets
import Foundation
import Formats
import Kernels
import TensorStore

/// What extracted features depend on. Cached features are reused only when every field
/// matches: the weights' bytes (SHA-256), the model as built from them (config and
/// interpolation), the precision of its linear layers (`Precision`: bf16 features are not f32
/// features), the preprocessing, the dataset's content (`LabeledImages.fingerprint`, so a moved
/// folder or the other CIFAR layout of the same images still matches), and the split.
public struct FeatureCacheKey: Codable, Equatable, Sendable {
    public var weightsSHA256: String
    public var model: String
    /// `Precision.rawValue` ("f32", "bf16", ...); kept as text so that a cache written by a build
    /// with more precisions is read as a miss, not as an error.
    public var precision: String
    public var preprocessing: String
    public var datasetFingerprint: String
    public var split: String
    public var count: Int

    public init(weightsSHA256: String, model: String, precision: String = Precision.f32.rawValue, preprocessing: String,
                datasetFingerprint: String, split: String, count: Int) {
        self.weightsSHA256 = weightsSHA256
        self.model = model
        self.precision = precision
        self.preprocessing = preprocessing
        self.datasetFingerprint = datasetFingerprint
        self.split = split
        self.count = count
    }

    enum CodingKeys: String, CodingKey {
        case weightsSHA256, model, precision, preprocessing, datasetFingerprint, split, count
    }

    /// Manifests written before the key had a precision describe f32 features (the only kind
    /// there was): they read as f32, so those caches stay valid.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        weightsSHA256 = try c.decode(String.self, forKey: .weightsSHA256)
        model = try c.decode(String.self, forKey: .model)
        precision = try c.decodeIfPresent(String.self, forKey: .precision) ?? Precision.f32.rawValue
        preprocessing = try c.decode(String.self, forKey: .preprocessing)
        datasetFingerprint = try c.decode(String.self, forKey: .datasetFingerprint)
        split = try c.decode(String.self, forKey: .split)
        count = try c.decode(Int.self, forKey: .count)
    }

    /// Files are named `<split>-<first 16 hex digits of the key's digest>`, so caches for
    /// different weights, precisions or preprocessing live side by side. f32 adds nothing to the
    /// digest, so f32 entries keep the names they had before the key had a precision.
    public var stem: String {
        var h = SHA256()
        let precisionLine = precision == Precision.f32.rawValue ? "" : "\nprecision \(precision)"
        h.update(Array("\(weightsSHA256)\n\(model)\n\(preprocessing)\n\(datasetFingerprint)\n\(split)\n\(count)\(precisionLine)".utf8))
        let safeSplit = split.filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
        return "\(safeSplit)-\(h.hexDigest().prefix(16))"
    }
}

/// The feature cache (`probe --cache DIR`): for each key, `<stem>.npy` (float32 (N, D)
/// features), `<stem>.labels.npy` (int64 labels; the pair can be given back to
/// `probe --train-features/--train-labels`) and `<stem>.json`, the manifest: the key, the
/// weights file's path and the dataset's (for people), and the SHA-256 of the features file. Every file is written atomically
/// and the manifest last, so a run interrupted mid-write leaves no entry that looks valid.
/// An entry is reused only when its manifest's key equals the requested key and the features
/// file still has the recorded digest and shape; otherwise features are extracted again and
/// the entry rewritten.
public struct FeatureCache: Sendable {
    public let directory: String

    public static let format = "dinokit-feature-cache/1"

    public init(directory: String) throws {
        // A folder output: created when missing, its parent must exist (OutputPath's rule).
        do { try OutputPath.createFolder(directory) } catch let problem as OutputPath.Problem {
            throw EvaluationError.cache(path: directory, detail: "\(problem)")
        }
        self.directory = directory
    }

    struct Manifest: Codable {
        var format: String
        var key: FeatureCacheKey
        var weightsPath: String
        var dataset: String
        var features: String
        var labels: String
        var shape: [Int]
        var featuresSHA256: String
        var created: String
    }

    public func paths(for key: FeatureCacheKey) -> (features: String, labels: String, manifest: String) {
        let base = directory + "/" + key.stem
        return (base + ".npy", base + ".labels.npy", base + ".json")
    }

    /// Why an entry was not reused, or nil with the features when it was.
    public enum Lookup {
        case hit(FeatureMatrix)
        case miss(reason: String)
    }

    public func lookup(_ key: FeatureCacheKey) -> Lookup {
        let p = paths(for: key)
        guard FileManager.default.fileExists(atPath: p.manifest) else { return .miss(reason: "no cached features") }
        guard let bytes = try? RegularFile.read(p.manifest), case let data = Data(bytes),
              let manifest = try? JSONDecoder().decode(Manifest.self, from: data) else {
            return .miss(reason: "unreadable manifest \(p.manifest)")
        }
        guard manifest.format == FeatureCache.format else { return .miss(reason: "manifest format \(manifest.format)") }
        guard manifest.key == key else { return .miss(reason: "manifest describes other weights, preprocessing or data") }
        guard let digest = try? SHA256.hexDigest(ofFile: p.features), digest == manifest.featuresSHA256 else {
            return .miss(reason: "features file changed since it was cached")
        }
        guard let features = try? FeatureMatrix.load(npy: p.features), [features.rows, features.columns] == manifest.shape,
              features.rows == key.count else {
            return .miss(reason: "features file does not hold \(manifest.shape)")
        }
        return .hit(features)
    }

    /// Writes features (and labels) for `key`; the manifest goes last.
    public func store(_ features: FeatureMatrix, labels: [Int], key: FeatureCacheKey, weightsPath: String,
                      dataset: String = "") throws {
        let p = paths(for: key)
        do {
            try NPY.write(try features.tensor(), to: p.features)
            try LabelFile.write(labels, to: p.labels)
            let manifest = Manifest(format: FeatureCache.format, key: key, weightsPath: weightsPath, dataset: dataset,
                                    features: (p.features as NSString).lastPathComponent,
                                    labels: (p.labels as NSString).lastPathComponent,
                                    shape: [features.rows, features.columns],
                                    featuresSHA256: try SHA256.hexDigest(ofFile: p.features),
                                    created: ISO8601DateFormatter().string(from: Date()))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let json = try encoder.encode(manifest)
            try AtomicFileWriter.write(to: p.manifest) { try $0.write([UInt8](json) + [0x0A]) }
        } catch let error as EvaluationError {
            throw error
        } catch {
            throw EvaluationError.cache(path: directory, detail: "cannot write features: \(error)")
        }
    }

    /// Cached features for `key`, or `extract()`'s, stored for next time.
    public func features(for key: FeatureCacheKey, labels: [Int], weightsPath: String, dataset: String = "",
                         extract: () throws -> FeatureMatrix) throws -> (features: FeatureMatrix, reused: Bool, reason: String?) {
        switch lookup(key) {
        case let .hit(features): return (features, true, nil)
        case let .miss(reason):
            let features = try extract()
            try store(features, labels: labels, key: key, weightsPath: weightsPath, dataset: dataset)
            return (features, false, reason)
        }
    }

    /// SHA-256 of a weights file, or of every file of a weights folder (an HF folder: names and
    /// contents of its regular files in sorted order).
    public static func weightsDigest(path: String) throws -> String {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw EvaluationError.missingFile(path: path, expected: "weights")
        }
        guard isDir.boolValue else { return try SHA256.hexDigest(ofFile: path) }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
        var h = SHA256()
        for name in names where !ImageFolder.isDirectory(path + "/" + name) {
            h.update(Array("\(name)\n\(try SHA256.hexDigest(ofFile: path + "/" + name))\n".utf8))
        }
        return h.hexDigest()
    }
}
