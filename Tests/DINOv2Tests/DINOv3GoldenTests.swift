import DINOv2
import Formats
import Foundation
import TensorStore
import TestSupport
import XCTest

/// DINOv3 against its golden sets (Fixtures/golden/tiny-v3-*, made by Scripts/make-goldens from
/// transformers' DINOv3ViTModel and the official dinov3 code): every output within the tight bound
/// the issue sets, 2e-5 + 2e-6·max|golden|, at 32×48, 224 (batch 2), 160×256, 512, 640, masked
/// and intermediate layers, for the MLP, SwiGLU and untied-norm families. The bound is tight
/// enough to see the numerics: DINOv2's LayerNorm eps, or a key bias the mask should remove, fail it.
final class DINOv3GoldenTests: XCTestCase {
    static let atol: Float = 2e-5
    static let rtol: Float = 2e-6

    static func sets() throws -> [GoldenSet] {
        let root = fixturePath("golden")
        return try FileManager.default.contentsOfDirectory(atPath: root).sorted()
            .filter { $0.hasPrefix("tiny-v3-") }
            .map { try GoldenSet.load(directory: root + "/" + $0) }
    }

    static func model(_ set: GoldenSet, edit: (inout TensorStore) throws -> Void = { _ in }) throws -> Model {
        var store = try loadWeights(path: try XCTUnwrap(set.weightsPath))
        try edit(&store)
        return try Model(store: store, numHeads: set.numHeads, parallelism: .init(threads: 2))
    }

    func testEveryDINOv3GoldenSetPassesTheTightBound() throws {
        let sets = try Self.sets()
        XCTAssertGreaterThanOrEqual(sets.count, 3, "expected tiny-v3-plain, tiny-v3-swiglu and tiny-v3-untied")
        for set in sets {
            let name = (set.directory as NSString).lastPathComponent
            XCTAssertEqual(set.family, .dinov3, name)
            let model = try Self.model(set)
            XCTAssertEqual(model.config.family, .dinov3, name)
            let report = try Verifier.run(set, model: model, atol: Self.atol, rtol: Self.rtol)
            var outputs = 0
            for c in report.cases {
                for o in c.outputs {
                    outputs += 1
                    print(kernelPathLabel, String(format: "%@ %@ %@: max_abs_err %.3g max_abs_ref %.3g %@", name, c.name, o.key,
                                                  o.maxAbsErr ?? .nan, o.maxAbsRef ?? .nan, o.pass ? "pass" : "FAIL"))
                    XCTAssertTrue(o.pass, "\(name)/\(c.name)/\(o.key): \(o.error ?? "max abs err \(o.maxAbsErr ?? .nan)")")
                }
            }
            XCTAssertGreaterThanOrEqual(outputs, 10, name)
        }
    }

    func testTheSetsCoverEverySizeAndOutput() throws {
        for set in try Self.sets() {
            let keys = Set(set.cases.flatMap { $0.outputs.map(\.key.description) })
            for key in ["x_norm_clstoken", "x_storage_tokens", "x_norm_patchtokens", "x_prenorm", "forward",
                        "intermediate.0.patch", "intermediate.0.cls"] {
                XCTAssertTrue(keys.contains(key), "\(set.directory): no \(key)")
            }
            XCTAssertTrue(set.cases.contains { $0.masksPath != nil }, "\(set.directory): no masked case")
        }
    }

    func testDINOv2LayerNormEpsFailsTheTightBound() throws {
        let set = try XCTUnwrap(try Self.sets().first { $0.directory.hasSuffix("tiny-v3-plain") })
        let right = try Self.model(set)
        XCTAssertEqual(right.config.layerNormEps, 1e-5)
        var config = right.config
        config.layerNormEps = 1e-6
        let wrong = try Model(hubStore: try KeyLayouts.canonicalize(loadWeights(path: set.weightsPath!)).store, config: config)
        XCTAssertFalse(try Verifier.run(set, model: wrong, atol: Self.atol, rtol: Self.rtol).pass)
    }

    func testAKeyBiasTheMaskShouldRemoveFailsTheTightBound() throws {
        let set = try XCTUnwrap(try Self.sets().first { $0.directory.hasSuffix("tiny-v3-plain") })
        // The fixture's key third of qkv.bias is not zero: only bias_mask keeps it out.
        let unmasked = try Self.model(set) { store in
            for name in store.names where name.hasSuffix("attn.qkv.bias_mask") { store.remove(name) }
        }
        XCTAssertFalse(unmasked.config.architecture.maskedKeyBias)
        XCTAssertFalse(try Verifier.run(set, model: unmasked, atol: Self.atol, rtol: Self.rtol).pass)
    }

    func testANaNInTheBiasMaskIsANamedError() throws {
        let set = try XCTUnwrap(try Self.sets().first { $0.directory.hasSuffix("tiny-v3-plain") })
        XCTAssertThrowsError(try Self.model(set) { store in
            let name = "blocks.1.attn.qkv.bias_mask"
            var values = try XCTUnwrap(store[name]).floats()
            values[3] = .nan
            store[name] = try Tensor(shape: Shape([values.count]), floats: values)
        }) { error in
            XCTAssertTrue("\(error)".contains("blocks.1.attn.qkv.bias_mask"), "\(error)")
        }
    }

    func testAManifestFamilyThatDisagreesWithTheWeightsIsRefused() throws {
        var set = try XCTUnwrap(try Self.sets().first)
        set.family = .dinov2
        XCTAssertThrowsError(try Verifier.run(set)) { error in
            XCTAssertEqual(error as? GoldenSetError,
                           .familyMismatch(directory: set.directory, manifest: .dinov2, weights: .dinov3))
        }
    }
}
