import Foundation
import TestSupport
@testable import Training
import XCTest

/// DinoKit's MaskingGenerator against the official one mask for mask: Scripts/fixtures/ssl_augment.py
/// runs dinov2's MaskingGenerator with Python's `random` replaced by a SplitMix64 stream
/// (`ReplayRandom`), and this test feeds the same stream to DinoKit's generator.
final class MaskingReplayTests: XCTestCase {
    /// The script's ReplayRandom: uniform = a + (b − a)·u, randint = a + int(u·(b − a + 1)).
    struct Replay: MaskDrawing {
        var state: UInt64
        mutating func u() -> Double {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return Double(z >> 11) * 0x1p-53
        }
        mutating func uniform() -> Double { u() }
        mutating func uniform(_ lower: Double, _ upper: Double) -> Double { lower + (upper - lower) * u() }
        mutating func integer(_ lower: Int, _ upper: Int) -> Int { lower + Int(u() * Double(upper - lower + 1)) }
    }

    static func hex(_ mask: [Bool]) -> String {
        var digits = ""
        for i in stride(from: 0, to: mask.count, by: 4) {
            let v = (0..<4).reduce(0) { $0 * 2 + (mask[i + $1] ? 1 : 0) }
            digits += String(v, radix: 16)
        }
        return digits
    }

    func testSameDrawsGiveTheOfficialMasks() throws {
        let replay = try SSLAugFixtures.stats()["masking"]["replay"]
        let generator = MaskingGenerator(globalSize: 224, patchSize: 14)
        for target in [0, 5, 30, 77, 128, 200] {
            let expected = try XCTUnwrap(replay["\(target)"].value as? [String], "no replay for \(target)")
            var rng = Replay(state: UInt64(target))
            let got = (0..<expected.count).map { _ in Self.hex(generator.generate(target, rng: &rng)) }
            XCTAssertEqual(got, expected, "target \(target)")
        }
    }

    /// collate_data_and_cast's masks (B = 4) with one stream shared by collate and generator.
    func testCollateWithTheSameDrawsGivesTheOfficialMasks() throws {
        let replay = try SSLAugFixtures.stats()["masking"]["replay_collate"]
        let generator = MaskingGenerator(globalSize: 224, patchSize: 14)
        for seed in [11, 12, 13] {
            let expected = try XCTUnwrap(replay["\(seed)"]["masks"].value as? [String], "no collate replay for \(seed)")
            var rng = Replay(state: UInt64(seed))
            let r = MaskCollate.masks(crops: 8, generator: generator, config: MaskConfig(), rng: &rng)
            let rows = (0..<8).map { Self.hex(Array(r.masks[($0 * 256)..<(($0 + 1) * 256)])) }
            XCTAssertEqual(rows, expected, "seed \(seed)")
            XCTAssertEqual(r.upperbound, replay["\(seed)"]["upperbound"].int)
        }
    }
}
