import Foundation
import Formats
import Kernels
import TensorStore

/// Runs a golden set through DinoKit and compares every output with the PyTorch reference:
/// an output passes when max |swift − golden| ≤ atol + rtol · max |golden|.
public enum Verifier {
    public static let defaultAbsoluteTolerance: Float = 1e-4
    public static let defaultRelativeTolerance: Float = 1e-5

    /// Verifies `set` with `model` if given, else with weights from `weightsPath` or the manifest.
    /// `interpolation` overrides the manifest's semantics (`verify --interpolation`). Problems
    /// with the golden files themselves (unreadable .npy, shape mismatch) fail that output and
    /// are reported in it; problems that stop every case (no weights, bad weights) throw.
    public static func run(_ set: GoldenSet, model: Model? = nil, weightsPath: String? = nil,
                           atol: Float = defaultAbsoluteTolerance, rtol: Float = defaultRelativeTolerance,
                           interpolation: InterpolationSemantics? = nil,
                           parallelism: Parallelism = .fromEnvironment) throws -> VerificationReport {
        var m: Model
        if let model {
            m = model
        } else {
            guard let path = weightsPath ?? set.weightsPath else { throw GoldenSetError.noWeights(directory: set.directory) }
            m = try Model(store: loadWeights(path: path), numHeads: set.numHeads, parallelism: parallelism)
        }
        if let family = set.family, family != m.config.family {
            throw GoldenSetError.familyMismatch(directory: set.directory, manifest: family, weights: m.config.family)
        }
        m.interpolation = .semantics(interpolation ?? set.interpolation, registerTokens: m.config.registerTokens)
        let workspace = Workspace()
        let cases = set.cases.map { c in verify(c, model: m, atol: atol, rtol: rtol, workspace: workspace) }
        return VerificationReport(pass: cases.allSatisfy(\.pass), cases: cases)
    }

    static func verify(_ c: GoldenCase, model: Model, atol: Float, rtol: Float, workspace: Workspace) -> CaseReport {
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
        return OutputReport(key: key, maxAbsErr: Double(maxErr), maxRelErr: Double(rel), maxAbsRef: Double(maxRef),
                            pass: pass, error: nil)
    }
}

/// `verify --json`: {"pass", "cases": [{"name", "outputs": [{"key", "max_abs_err", "max_rel_err",
/// "max_abs_ref", "pass"}]}]}. Non-finite errors are written as null; an output that could not
/// be compared carries an "error" message.
public struct VerificationReport: Codable, Sendable, Equatable {
    public var pass: Bool
    public var cases: [CaseReport]

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
        try c.encode(pass, forKey: .pass)
        try c.encodeIfPresent(error, forKey: .error)
    }
}
