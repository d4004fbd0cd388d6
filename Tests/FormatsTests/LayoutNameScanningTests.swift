@testable import Formats
import XCTest

/// The byte-level name scanning behind layout detection must agree exactly with the String
/// splitting it replaced (kept here as the oracle), on ordinary and on odd names.
final class LayoutNameScanningTests: XCTestCase {
    static let names = [
        "", ".", "..", "a", "a.b", "a..b", ".a.", "cls_token", "blocks.0.norm1.weight", "blocks.0.1.norm1.weight",
        "blocks.1.0.norm1.weight", "blocks.0.1", "blocks.0.1.", "blocks.00.01.x", "blocks.1234567890.1.x", "blocks.a.1.x",
        "teacher", "teacher.", "teacher.backbone.cls_token", "student.x", "model", "model.teacher.x", "model.blocks.0.0.x",
        "module", "module.teacher.x", "teacher.module", "_orig_mod.backbone.x", "_fsdp_wrapped_module.blocks.0.0.x",
        "model._checkpoint_wrapped_module.student.y", "modules.teacher", "_orig_mo.teacher.x", "dino_head.mlp.0.weight",
        "ibot_head.last_layer.weight", "backbone", "optimizer.state.0", "embeddings.cls_token", "ünï.cödé.blocks",
        "module..module.blocks.2.3.z",
    ]

    func testComponentsAreWhatSplitGives() {
        for name in Self.names {
            let expected = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            let got: [String] = LayoutNames.withBytes(name) { b in
                var it = NameComponents(b)
                var out: [String] = []
                while let c = it.next() { out.append(String(decoding: UnsafeBufferPointer(rebasing: b[c]), as: UTF8.self)) }
                return out
            }
            XCTAssertEqual(got, expected, name)
        }
    }

    func testWrapperSkippingIsStrippingWrappers() {
        for name in Self.names {
            let joined: String = LayoutNames.withBytes(name) { b in
                var it = NameComponents(b, skippingWrappers: true)
                var out: [String] = []
                while let c = it.next() { out.append(String(decoding: UnsafeBufferPointer(rebasing: b[c]), as: UTF8.self)) }
                return out.joined(separator: ".")
            }
            XCTAssertEqual(joined, LayoutNames.strippingWrappers(name), name)
            let expectWrapper = name.split(separator: ".", omittingEmptySubsequences: false).contains { LayoutNames.wrapperComponents.contains($0) }
            XCTAssertEqual(LayoutNames.hasWrapper(name), expectWrapper, name)
        }
    }

    /// `TrainingLayout.matches` as it was written on split strings.
    private func splitMatches(_ n: String) -> Bool {
        let stripped = n.split(separator: ".", omittingEmptySubsequences: false)
            .filter { !LayoutNames.wrapperComponents.contains($0) }.joined(separator: ".")
        var parts = stripped.split(separator: ".", omittingEmptySubsequences: false)[...]
        if parts.first == "model" { parts = parts.dropFirst() }
        guard let first = parts.first else { return false }
        if ["teacher", "student"].contains(first), parts.count > 1 { return true }
        if first == "backbone" || first == "dino_head" || first == "ibot_head" { return true }
        return TrainingLayout.unchunked(parts.joined(separator: ".")) != nil
    }

    func testTrainingMatchAgreesWithSplitting() {
        for name in Self.names {
            XCTAssertEqual(TrainingLayout.matches([name]), splitMatches(name), name)
        }
    }
}
