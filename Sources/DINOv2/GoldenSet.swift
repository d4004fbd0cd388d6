import Foundation
import Formats
import TensorStore

/// A golden set (`dinokit-golden/1`): reference outputs of the official PyTorch model for some
/// inputs, with the weights that produced them. Layout and keys as in issue 3 and
/// Fixtures/golden/README.md; paths in the manifest are relative to its folder.
public struct GoldenSet: Sendable {
    public static let format = "dinokit-golden/1"

    public var directory: String
    /// Which model made it (informational).
    public var model: String?
    /// The weights file, resolved against `directory`; nil when the manifest names none.
    public var weightsPath: String?
    public var interpolation: InterpolationSemantics
    /// Head count to build the model with (tiny models' widths do not imply it).
    public var numHeads: Int?
    /// The family the manifest says the weights are (`"family"`); the verifier checks the weights
    /// agree, so a DINOv3 set cannot pass with weights read as DINOv2 or the reverse.
    public var family: BackboneArchitecture.Family?
    /// The manifest's bf16 pass rule (`"tolerances": {"bf16": {"min_cosine", "atol", "rtol"}}`),
    /// nil for `Verifier.defaultBF16Tolerance`.
    public var bf16Tolerance: SimilarityTolerance? = nil
    /// The manifest's int8 pass rule (`"tolerances": {"int8": {...}}`), nil for
    /// `Verifier.defaultInt8Tolerance`.
    public var int8Tolerance: SimilarityTolerance? = nil
    public var cases: [GoldenCase]

    /// Reads and checks `directory/manifest.json` (every referenced file must exist).
    public static func load(directory: String) throws -> GoldenSet {
        let manifestPath = (directory as NSString).appendingPathComponent("manifest.json")
        let data: Data
        do { data = Data(try RegularFile.read(manifestPath, limit: 64 << 20)) } catch {
            throw GoldenSetError.unreadable(path: manifestPath)
        }
        let manifest: Manifest
        do {
            manifest = try JSONDecoder().decode(Manifest.self, from: data)
        } catch let error as DecodingError {
            throw GoldenSetError.invalidManifest(path: manifestPath, detail: describe(error))
        } catch {
            throw GoldenSetError.invalidManifest(path: manifestPath, detail: "not JSON")
        }
        guard manifest.format == format else {
            throw GoldenSetError.invalidManifest(path: manifestPath, detail: "format is '\(manifest.format)', expected '\(format)'")
        }
        // Every path the manifest names stays inside its folder (the rule ONNX external data follows).
        func resolve(_ relative: String, field: String) throws -> String {
            do { return try ContainedPath.resolve(relative, in: directory) } catch ContainedPath.Refusal.missing {
                throw GoldenSetError.missingFile(path: (directory as NSString).appendingPathComponent(relative), manifest: manifestPath)
            } catch {
                throw GoldenSetError.outsideFolder(manifest: manifestPath, field: field, detail: "\(error)")
            }
        }
        var interpolation = InterpolationSemantics.official
        if let s = manifest.interpolation {
            guard let i = InterpolationSemantics(rawValue: s) else {
                throw GoldenSetError.invalidManifest(path: manifestPath, detail: "interpolation '\(s)' is neither 'official' nor 'hf'")
            }
            interpolation = i
        }
        var family: BackboneArchitecture.Family?
        if let f = manifest.family {
            guard let known = BackboneArchitecture.Family(rawValue: f) else {
                throw GoldenSetError.invalidManifest(path: manifestPath, detail: "family '\(f)' is neither 'dinov2' nor 'dinov3'")
            }
            family = known
        }
        if let h = manifest.num_heads, h <= 0 {
            throw GoldenSetError.invalidManifest(path: manifestPath, detail: "num_heads \(h) is not positive")
        }
        var names = Set<String>()
        let cases = try manifest.cases.map { c -> GoldenCase in
            guard names.insert(c.name).inserted else {
                throw GoldenSetError.invalidManifest(path: manifestPath, detail: "case '\(c.name)' appears twice")
            }
            let input: GoldenInput
            switch c.input {
            case let .file(f): input = .file(try resolve(f, field: "cases[\(c.name)].input"))
            case let .synthetic(kind, seed, shape):
                guard kind == "lcg", seed >= 0, seed <= Int(UInt32.max), shape.count == 4,
                      shape.allSatisfy({ $0 > 0 }), Shape(shape).checkedElementCount != nil else {
                    throw GoldenSetError.invalidManifest(path: manifestPath, detail: "case '\(c.name)': bad synthetic input")
                }
                // Allocated in full when the case runs: bounded, so a manifest cannot ask for terabytes.
                let count = Shape(shape).checkedElementCount ?? Int.max
                guard count <= maxSyntheticElements else {
                    throw GoldenSetError.invalidManifest(
                        path: manifestPath,
                        detail: "case '\(c.name)': synthetic input shape \(shape) has \(count) elements, more than the limit of \(maxSyntheticElements)")
                }
                input = .synthetic(seed: UInt32(seed), shape: shape)
            }
            let outputs = try c.outputs.map { key, file -> (OutputKey, String) in
                guard let k = OutputKey(key) else {
                    throw GoldenSetError.invalidManifest(path: manifestPath, detail: "case '\(c.name)': unknown output key '\(key)'")
                }
                return (k, try resolve(file, field: "cases[\(c.name)].outputs.\(key)"))
            }.sorted { $0.0 < $1.0 }
            return GoldenCase(name: c.name, input: input, masksPath: try c.masks.map { try resolve($0, field: "cases[\(c.name)].masks") }, outputs: outputs)
        }
        return GoldenSet(directory: directory, model: manifest.model, weightsPath: try manifest.weights.map { try resolve($0, field: "weights") },
                         interpolation: interpolation, numHeads: manifest.num_heads, family: family,
                         bf16Tolerance: manifest.tolerances?.bf16?.applied(to: Verifier.defaultBF16Tolerance),
                         int8Tolerance: manifest.tolerances?.int8?.applied(to: Verifier.defaultInt8Tolerance), cases: cases)
    }

    /// Synthetic inputs hold at most this many floats (256 MB; a 518x518 batch of 64 is 52M).
    public static let maxSyntheticElements = 64 << 20

    /// A decoding failure as one line naming the field ("cases[0].input.shape: expected an array").
    static func describe(_ error: DecodingError) -> String {
        func field(_ path: [CodingKey]) -> String {
            let text = path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            let trimmed = text.hasPrefix(".") ? String(text.dropFirst()) : text
            return trimmed.isEmpty ? "the manifest" : "field '\(trimmed)'"
        }
        switch error {
        case let .keyNotFound(key, context):
            return "\(field(context.codingPath + [key])) is missing"
        case let .typeMismatch(type, context):
            return "\(field(context.codingPath)) is not \(typeName(type, at: context.codingPath))"
        case let .valueNotFound(type, context):
            return "\(field(context.codingPath)) is null, expected \(typeName(type, at: context.codingPath))"
        case let .dataCorrupted(context):
            return context.codingPath.isEmpty ? "not valid JSON" : "\(field(context.codingPath)) is invalid"
        @unknown default:
            return "not a golden manifest"
        }
    }

    /// What the manifest's schema wants where decoding failed, in words.
    private static func typeName(_ type: Any.Type, at path: [CodingKey]) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type: return "an integer"
        case is [Int].Type: return "an array of integers"
        case is [Any].Type: return "an array"
        case is [String: Any].Type:
            return path.last?.stringValue == "input" ? "a .npy path or a {\"synthetic\", \"seed\", \"shape\"} object" : "an object"
        default: return "of the expected kind"
        }
    }

    /// The manifest as JSON, extensions included.
    private struct Manifest: Decodable {
        var format: String
        var model: String?
        var weights: String?
        var interpolation: String?
        var num_heads: Int?
        var family: String?
        var tolerances: Tolerances?
        var cases: [Case]

        struct Tolerances: Decodable {
            var bf16: SimilarityTolerance.Override?
            var int8: SimilarityTolerance.Override?
        }

        struct Case: Decodable {
            var name: String
            var input: Input
            var masks: String?
            var outputs: [String: String]
        }

        /// A .npy path, or {"synthetic": "lcg", "seed": N, "shape": [B, 3, H, W]}.
        enum Input: Decodable {
            case file(String)
            case synthetic(kind: String, seed: Int, shape: [Int])

            private enum Keys: String, CodingKey { case synthetic, seed, shape }

            init(from decoder: Decoder) throws {
                if let s = try? decoder.singleValueContainer().decode(String.self) {
                    self = .file(s)
                    return
                }
                let c = try decoder.container(keyedBy: Keys.self)
                self = .synthetic(kind: try c.decode(String.self, forKey: .synthetic),
                                  seed: try c.decode(Int.self, forKey: .seed),
                                  shape: try c.decode([Int].self, forKey: .shape))
            }
        }
    }
}

public struct GoldenCase: Sendable {
    public var name: String
    public var input: GoldenInput
    public var masksPath: String?
    /// Outputs in a fixed order (features, forward, then intermediate blocks by index).
    public var outputs: [(key: OutputKey, path: String)]
}

public enum GoldenInput: Sendable, Equatable {
    case file(String)
    case synthetic(seed: UInt32, shape: [Int])

    public func load() throws -> Tensor {
        switch self {
        case let .file(path): return try NPY.read(path: path)
        case let .synthetic(seed, shape): return try SyntheticInput.tensor(seed: seed, shape: Shape(shape))
        }
    }
}

/// A golden output name: `x_norm_clstoken`, `x_norm_regtokens` (DINOv2) or `x_storage_tokens`
/// (DINOv3's name for the same normed tokens), `x_norm_patchtokens`, `x_prenorm`, `forward`,
/// `intermediate.<i>.patch`, `intermediate.<i>.cls`.
public enum OutputKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    case clsToken, regTokens, storageTokens, patchTokens, prenorm, forward
    case intermediatePatch(Int), intermediateCls(Int)

    public init?(_ s: String) {
        switch s {
        case "x_norm_clstoken": self = .clsToken
        case "x_norm_regtokens": self = .regTokens
        case "x_storage_tokens": self = .storageTokens
        case "x_norm_patchtokens": self = .patchTokens
        case "x_prenorm": self = .prenorm
        case "forward": self = .forward
        default:
            let parts = s.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 3, parts[0] == "intermediate", let i = Int(parts[1]), i >= 0 else { return nil }
            switch parts[2] {
            case "patch": self = .intermediatePatch(i)
            case "cls": self = .intermediateCls(i)
            default: return nil
            }
        }
    }

    public var description: String {
        switch self {
        case .clsToken: return "x_norm_clstoken"
        case .regTokens: return "x_norm_regtokens"
        case .storageTokens: return "x_storage_tokens"
        case .patchTokens: return "x_norm_patchtokens"
        case .prenorm: return "x_prenorm"
        case .forward: return "forward"
        case let .intermediatePatch(i): return "intermediate.\(i).patch"
        case let .intermediateCls(i): return "intermediate.\(i).cls"
        }
    }

    private var order: (Int, Int, Int) {
        switch self {
        case .clsToken: return (0, 0, 0)
        case .regTokens: return (1, 0, 0)
        case .storageTokens: return (1, 1, 0)
        case .patchTokens: return (2, 0, 0)
        case .prenorm: return (3, 0, 0)
        case .forward: return (4, 0, 0)
        case let .intermediatePatch(i): return (5, i, 0)
        case let .intermediateCls(i): return (5, i, 1)
        }
    }

    public static func < (a: OutputKey, b: OutputKey) -> Bool { a.order < b.order }
}

public enum GoldenSetError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String)
    case invalidManifest(path: String, detail: String)
    case missingFile(path: String, manifest: String)
    /// A path in the manifest that would leave the golden set's folder.
    case outsideFolder(manifest: String, field: String, detail: String)
    case noWeights(directory: String)
    /// The weights are of another family than the manifest says.
    case familyMismatch(directory: String, manifest: BackboneArchitecture.Family, weights: BackboneArchitecture.Family)

    /// Names and paths come from the manifest: escaped once here, so every case stays one line.
    public var description: String {
        switch self {
        case let .unreadable(path): return "\(path.escapedForMessage): cannot read the golden manifest"
        case let .invalidManifest(path, detail): return "\(path.escapedForMessage): \(detail.escapedForMessage)"
        case let .missingFile(path, manifest): return "\(path.escapedForMessage): file named in \(manifest.escapedForMessage) does not exist"
        case let .outsideFolder(manifest, field, detail):
            return "\(manifest.escapedForMessage): \(field.escapedForMessage): \(detail.escapedForMessage); paths in a golden manifest stay inside its folder"
        case let .noWeights(directory):
            return "golden set \(directory.escapedForMessage) names no weights; pass them explicitly (--weights)"
        case let .familyMismatch(directory, manifest, weights):
            return "golden set \(directory.escapedForMessage) is for \(manifest.rawValue) but the weights are a \(weights.rawValue) backbone"
        }
    }
}
