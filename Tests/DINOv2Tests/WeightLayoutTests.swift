import DINOv2
import Formats
import TensorStore
import TestSupport
import XCTest

/// `Model(store:)` accepts weights in any layout KeyLayouts reads (HF, timm, training checkpoint),
/// DINOv2's and DINOv3's, and gives bit-identical outputs to the hub layout; without a mask token masks are refused; and the golden sets are sensitive to the
/// interpolation semantics (HF's offset-free resize does not pass an official golden set).
final class WeightLayoutTests: XCTestCase {
    func testEveryLayoutGivesTheSameOutputs() throws {
        for name in ["tiny-plain", "tiny-reg", "tiny-swiglu"] {
            let hub = try InputValidationTests.tinyStore(name)
            let x = try SyntheticInput.tensor(seed: 11, shape: [1, 3, 42, 28])
            let masks = try [UInt8]([1, 0, 0, 1, 0, 1]).withUnsafeBytes { try Tensor(dtype: .bool, shape: [1, 6], bytes: $0) }
            let reference = try Model(store: hub, numHeads: 2).forwardFeatures(x, masks: masks)
            for layout in [Layout.hf, .timm, .training] {
                let store = try KeyLayouts.render(hub, as: layout)
                let model = try Model(store: store, numHeads: 2)
                let f = try model.forwardFeatures(x, masks: masks)
                XCTAssertTrue(f.prenorm.bitwiseEqual(reference.prenorm), "\(name) \(layout)")
                XCTAssertTrue(f.clsToken.bitwiseEqual(reference.clsToken), "\(name) \(layout)")
            }
            // Without a mask token (as timm's own converter leaves it) masks are refused, by name.
            var noMask = hub
            noMask.remove("mask_token")
            let model = try Model(store: noMask, numHeads: 2)
            XCTAssertTrue(try model(x).bitwiseEqual(Model(store: hub, numHeads: 2)(x)), name)
            XCTAssertThrowsError(try model.forwardFeatures(x, masks: masks)) { error in
                XCTAssertEqual(error as? DINOv2Error, .noMaskToken)
            }
        }
    }

    /// The mini DINOv3 MLP model (Fixtures/models/mini-v3-plain*, Scripts/fixtures/layouts_v3.py) in
    /// every layout: the files transformers, timm and the official training code wrote, and DinoKit's
    /// own renderings. HF and timm lack the key bias third (the official mask zeroes it) and the
    /// periods (recomputed from base 100: 1 and 10 for head dim 8, exact); the outputs are the same bits.
    func testEveryDINOv3LayoutOfTheMiniModelGivesTheSameOutputs() throws {
        let hub = try loadWeights(path: fixturePath("models/mini-v3-plain.pth"))
        let x = try SyntheticInput.tensor(seed: 12, shape: [2, 3, 32, 24])
        let reference = try Model(store: hub, numHeads: 2).forwardFeatures(x)
        var stores: [(String, TensorStore)] = []
        for file in ["mini-v3-plain-hf", "mini-v3-plain-timm.safetensors", "mini-v3-plain-teacher_checkpoint.pth"] {
            stores.append((file, try loadWeights(path: fixturePath("models/" + file))))
        }
        for layout in [Layout.hf, .timm, .training] {
            stores.append(("rendered \(layout)", try KeyLayouts.render(hub, as: layout)))
        }
        for (label, store) in stores {
            let model = try Model(store: store, numHeads: 2)
            XCTAssertEqual(model.config.family, .dinov3, label)
            let f = try model.forwardFeatures(x)
            XCTAssertTrue(f.prenorm.bitwiseEqual(reference.prenorm), label)
            XCTAssertTrue(f.clsToken.bitwiseEqual(reference.clsToken), label)
            XCTAssertTrue(f.regTokens.bitwiseEqual(reference.regTokens), label)
            XCTAssertTrue(f.patchTokens.bitwiseEqual(reference.patchTokens), label)
        }
    }

    func testOfficialGoldenSetFailsWithHuggingFaceInterpolation() throws {
        let set = try GoldenSet.load(directory: fixturePath("golden/tiny-plain"))
        let report = try Verifier.run(set, interpolation: .hf, parallelism: .init(threads: 2))
        XCTAssertFalse(report.pass)
        // 518×518 is never interpolated, so it still passes; 224 does not.
        XCTAssertTrue(try XCTUnwrap(report.cases.first { $0.name == "x518" }).pass)
        XCTAssertFalse(try XCTUnwrap(report.cases.first { $0.name == "x224" }).pass)
    }
}
