import Foundation
import Formats
import Kernels
import TensorStore

/// Runs a golden set through DinoKit and compares every output with the PyTorch reference:
/// an output passes when max |swift − golden| ≤ atol + rtol · max |golden|. A model at a
/// reduced precision (`Precision.bf16`, `.int8`) is held to that precision's `SimilarityTolerance`
/// instead: the mean cosine similarity of its token vectors with the golden ones, and a looser
/// max abs bound. Every output reports both its max abs error and its cosine.
public enum Verifier {
    public static let defaultAbsoluteTolerance: Float = 1e-4
    public static let defaultRelativeTolerance: Float = 1e-5

    /// What a bf16 model must reach against the float32 goldens unless the manifest says otherwise
    /// (`"tolerances": {"bf16": {...}}`): mean cosine ≥ 0.999 and max abs ≤ 0.05 + 0.05 · max |golden|.
    public static let defaultBF16Tolerance = SimilarityTolerance(minCosine: 0.999, atol: 0.05, rtol: 0.05)

    /// What an int8 model must reach unless the manifest says otherwise (`"tolerances": {"int8":
    /// {...}}`): mean cosine ≥ 0.999 and max abs ≤ 0.1 + 0.1 · max |golden|. Measured (per-token
    /// activations): least mean cosine 0.99953 over every output of the tiny sets and the full-size
    /// DINOv3 S/16, S+/16, B/16 sets, max abs at most 0.30 of the bound; per-tensor activation
    /// scales fall below 0.999 (0.99853 on tiny-v3-swiglu, 0.99898 on S+/16).
    public static let defaultInt8Tolerance = SimilarityTolerance(minCosine: 0.999, atol: 0.1, rtol: 0.1)

    /// The tolerance `precision` is verified with for `set` (f32: nil, the atol/rtol rule).
    public static func similarityTolerance(for precision: Precision, set: GoldenSet) -> SimilarityTolerance? {
        switch precision {
        case .f32: return nil
        case .bf16: return set.bf16Tolerance ?? defaultBF16Tolerance
        case .int8: return set.int8Tolerance ?? defaultInt8Tolerance
        }
    }

    /// Verifies `set` with `model` if given, else with weights from `weightsPath` or the manifest.
    /// `interpolation` overrides the manifest's semantics (`verify --interpolation`). Problems
    /// with the golden files themselves (unreadable .npy, shape mismatch) fail that output and
    /// are reported in it; problems that stop every case (no weights, bad weights) throw.
    public static func run(_ set: GoldenSet, model: Model? = nil, weightsPath: String? = nil,
                           atol: Float = defaultAbsoluteTolerance, rtol: Float = defaultRelativeTolerance,
                           interpolation: InterpolationSemantics? = nil, precision: Precision = .f32,
                           similarity: SimilarityTolerance? = nil,
                           parallelism: Parallelism = .fromEnvironment) throws -> VerificationReport {
        var m: Model
        if let model {
            m = model
        } else {
            guard let path = weightsPath ?? set.weightsPath else { throw GoldenSetError.noWeights(directory: set.directory) }
            m = try Model(store: loadWeights(path: path), numHeads: set.numHeads, precision: precision,
                          parallelism: parallelism)
        }
        // The model's precision decides (a model passed in keeps its own); `similarity` overrides
        // the manifest's or default tolerance of a reduced precision.
        let tolerance = m.precision == .f32 ? nil : (similarity ?? similarityTolerance(for: m.precision, set: set))
        if let family = set.family, family != m.config.family {
            throw GoldenSetError.familyMismatch(directory: set.directory, manifest: family, weights: m.config.family)
        }
        m.interpolation = .semantics(interpolation ?? set.interpolation, registerTokens: m.config.registerTokens)
        let workspace = Workspace()
        let cases = set.cases.map { c in
            verify(c, model: m, atol: atol, rtol: rtol, similarity: tolerance, workspace: workspace)
        }
        var report = VerificationReport(pass: cases.allSatisfy(\.pass), cases: cases)
        if m.precision != .f32 {
            report.precision = m.precision.rawValue
            report.tolerance = tolerance
        }
        return report
    }

    static func verify(_ c: GoldenCase, model: Model, atol: Float, rtol: Float, similarity: SimilarityTolerance?,
                       workspace: Workspace) -> CaseReport {
        let failedCase = { (message: String) -> CaseReport in
            CaseReport(name: c.name, outputs: c.outputs.map { OutputReport(key: $0.key.description, error: message) })
        }
        let x: Tensor, masks: Tensor?
        do {
            x = try c.input.load()
            masks = try c.masksPath.map { try NPY.read(path: $0) }
        } catch {
            return failedCase("cannot read the case input: \(error)")
        }
        // Everything the case asks for, computed once: features (with masks, as forward_features
        // and forward(x, masks) see them) and intermediate blocks (get_intermediate_layers takes
        // no masks).
        var computed: [OutputKey: Tensor] = [:]
        var failures: [OutputKey: String] = [:]
        let keys = c.outputs.map(\.key)
        let wantsFeatures = keys.contains { [.clsToken, .regTokens, .storageTokens, .patchTokens, .prenorm, .forward].contains($0) }
        if wantsFeatures {
            do {
                let f = try model.forwardFeatures(x, masks: masks, workspace: workspace)
                computed[.clsToken] = f.clsToken
                computed[.forward] = f.clsToken
                computed[.regTokens] = f.regTokens
                computed[.storageTokens] = f.regTokens
                computed[.patchTokens] = f.patchTokens
                computed[.prenorm] = f.prenorm
            } catch {
                for k in keys { failures[k] = "forward failed: \(error)" }
            }
        }
        var blocks: [Int] = []
        for k in keys {
            switch k {
            case let .intermediatePatch(i), let .intermediateCls(i): if !blocks.contains(i) { blocks.append(i) }
            default: break
            }
        }
        if !blocks.isEmpty {
            do {
                let outs = try model.intermediateLayers(x, n: .indices(blocks), returnClassToken: true, norm: true,
                                                        workspace: workspace)
                for o in outs {
                    computed[.intermediatePatch(o.blockIndex)] = o.patchTokens
                    computed[.intermediateCls(o.blockIndex)] = o.classToken
                }
            } catch {
                for k in keys where failures[k] == nil { failures[k] = "intermediate layers failed: \(error)" }
            }
        }
        let outputs = c.outputs.map { key, path -> OutputReport in
            if let f = failures[key] { return OutputReport(key: key.description, error: f) }
            guard let mine = computed[key] else { return OutputReport(key: key.description, error: "not computed") }
            let golden: Tensor
            do { golden = try NPY.read(path: path) } catch {
                return OutputReport(key: key.description, error: "cannot read \(path): \(error)")
            }
            if let similarity { return compare(key: key.description, mine, golden, similarity: similarity) }
            return compare(key: key.description, mine, golden, atol: atol, rtol: rtol)
        }
        return CaseReport(name: c.name, outputs: outputs)
    }

    /// The verifier's comparison of one output. Shapes must agree exactly.
    public static func compare(key: String, _ mine: Tensor, _ golden: Tensor, atol: Float, rtol: Float) -> OutputReport {
        guard mine.shape == golden.shape else {
            return OutputReport(key: key, error: "shape \(mine.shape) but the golden output is \(golden.shape)")
        }
        guard golden.dtype.isFloatingPoint else {
            return OutputReport(key: key, error: "golden output has dtype \(golden.dtype), expected a float type")
        }
        let a = mine.floats(), b = golden.floats()
        var maxErr: Float = 0, maxRef: Float = 0
        var sawNaN = false
        for (x, y) in zip(a, b) {
            let e = abs(x - y)
            if e.isNaN { sawNaN = true } else { maxErr = max(maxErr, e) }
            maxRef = max(maxRef, abs(y))
        }
        if sawNaN { maxErr = .nan }
        let rel: Float = maxRef > 0 ? maxErr / maxRef : (maxErr == 0 ? 0 : .infinity)
        let pass = !sawNaN && maxErr <= atol + rtol * maxRef
        var report = OutputReport(key: key, maxAbsErr: Double(maxErr), maxRelErr: Double(rel), maxAbsRef: Double(maxRef),
                                  pass: pass, error: nil)
        let width = mine.shape.last ?? 1
        (report.cosine, report.minCosine) = cosines(a, b, width: width)
        return report
    }

    /// The comparison at a reduced precision: passes when the mean cosine over the output's token
    /// vectors is ≥ minCosine and max |swift − golden| ≤ atol + rtol · max |golden|.
    public static func compare(key: String, _ mine: Tensor, _ golden: Tensor, similarity t: SimilarityTolerance) -> OutputReport {
        var report = compare(key: key, mine, golden, atol: t.atol, rtol: t.rtol)
        if report.error == nil {
            report.pass = report.pass && (report.cosine.map { $0 >= t.minCosine } ?? false)
        }
        return report
    }

    /// Cosine similarity of each `width`-long vector (the last axis: one token of one image, or
    /// one image's cls token) of a with the same vector of b, in double: (mean, min). Two zero
    /// vectors count as 1; a zero vector against a non-zero one as 0.
    public static func cosines(_ a: [Float], _ b: [Float], width: Int) -> (mean: Double?, min: Double?) {
        guard width > 0, a.count == b.count, !a.isEmpty, a.count % width == 0 else { return (nil, nil) }
        var sum = 0.0, least = Double.infinity
        let vectors = a.count / width
        for v in 0..<vectors {
            var dot = 0.0, na = 0.0, nb = 0.0
            for i in v * width..<(v + 1) * width {
                let x = Double(a[i]), y = Double(b[i])
                dot += x * y
                na += x * x
                nb += y * y
            }
            let c = na == 0 && nb == 0 ? 1 : (na == 0 || nb == 0 ? 0 : dot / (na.squareRoot() * nb.squareRoot()))
            if c.isNaN { return (.nan, .nan) }
            sum += c
            least = Swift.min(least, c)
        }
        return (sum / Double(vectors), least)
    }
}

/// A reduced precision's pass rule (`verify --precision bf16`): mean cosine similarity of the
/// output's token vectors with the golden ones ≥ `minCosine`, and max |swift − golden| ≤
/// atol + rtol · max |golden|.
public struct SimilarityTolerance: Codable, Sendable, Equatable {
    public var minCosine: Double
    public var atol: Float
    public var rtol: Float

    public init(minCosine: Double, atol: Float, rtol: Float) {
        self.minCosine = minCosine
        self.atol = atol
        self.rtol = rtol
    }

    private enum CodingKeys: String, CodingKey {
        case atol, rtol
        case minCosine = "min_cosine"
    }

    /// Keys left out keep `Verifier.defaultBF16Tolerance`'s values.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = Verifier.defaultBF16Tolerance
        minCosine = try c.decodeIfPresent(Double.self, forKey: .minCosine) ?? d.minCosine
        atol = try c.decodeIfPresent(Float.self, forKey: .atol) ?? d.atol
        rtol = try c.decodeIfPresent(Float.self, forKey: .rtol) ?? d.rtol
    }
}

extension SimilarityTolerance {
    /// A golden manifest's tolerance for one precision: the keys it gives replace those of the
    /// precision's default (`applied(to:)`).
    struct Override: Decodable {
        var min_cosine: Double?
        var atol: Float?
        var rtol: Float?

        func applied(to d: SimilarityTolerance) -> SimilarityTolerance {
            SimilarityTolerance(minCosine: min_cosine ?? d.minCosine, atol: atol ?? d.atol, rtol: rtol ?? d.rtol)
        }
    }
}

/// `verify --json`: {"pass", "cases": [{"name", "outputs": [{"key", "max_abs_err", "max_rel_err",
/// "max_abs_ref", "cosine", "min_cosine", "pass"}]}]}, and at a reduced precision "precision" and
/// "tolerance": {"min_cosine", "atol", "rtol"}. Non-finite errors are written as null; an output
/// that could not be compared carries an "error" message.
public struct VerificationReport: Codable, Sendable, Equatable {
    public var pass: Bool
    public var cases: [CaseReport]
    /// Set for a reduced precision ("bf16"), with the tolerance it was held to; nil for f32.
    public var precision: String?
    public var tolerance: SimilarityTolerance?

    public init(pass: Bool, cases: [CaseReport]) {
        self.pass = pass
        self.cases = cases
    }

    /// Pretty-printed, key-sorted JSON.
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }
}

public struct CaseReport: Codable, Sendable, Equatable {
    public var name: String
    public var outputs: [OutputReport]

    public init(name: String, outputs: [OutputReport]) {
        self.name = name
        self.outputs = outputs
    }

    public var pass: Bool { !outputs.isEmpty && outputs.allSatisfy(\.pass) }

    private enum CodingKeys: String, CodingKey { case name, outputs }
}

public struct OutputReport: Codable, Sendable, Equatable {
    public var key: String
    public var maxAbsErr: Double?
    public var maxRelErr: Double?
    public var maxAbsRef: Double?
    /// Mean and least cosine similarity of the output's vectors (last axis) with the golden ones.
    public var cosine: Double?
    public var minCosine: Double?
    public var pass: Bool
    public var error: String?

    public init(key: String, maxAbsErr: Double?, maxRelErr: Double?, maxAbsRef: Double?, pass: Bool, error: String?) {
        self.key = key
        self.maxAbsErr = maxAbsErr
        self.maxRelErr = maxRelErr
        self.maxAbsRef = maxAbsRef
        self.pass = pass
        self.error = error
    }

    /// An output that could not be compared.
    init(key: String, error: String) {
        self.init(key: key, maxAbsErr: nil, maxRelErr: nil, maxAbsRef: nil, pass: false, error: error)
    }

    private enum CodingKeys: String, CodingKey {
        case key, pass, error
        case maxAbsErr = "max_abs_err", maxRelErr = "max_rel_err", maxAbsRef = "max_abs_ref"
        case cosine, minCosine = "min_cosine"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(key, forKey: .key)
        func number(_ v: Double?, _ k: CodingKeys) throws {
            if let v, v.isFinite { try c.encode(v, forKey: k) } else { try c.encodeNil(forKey: k) }
        }
        try number(maxAbsErr, .maxAbsErr)
        try number(maxRelErr, .maxRelErr)
        try number(maxAbsRef, .maxAbsRef)
        if cosine != nil || minCosine != nil {
            try number(cosine, .cosine)
            try number(minCosine, .minCosine)
        }
        try c.encode(pass, forKey: .pass)
        try c.encodeIfPresent(error, forKey: .error)
    }
}
