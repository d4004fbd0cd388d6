import Foundation
import Images
import TestSupport
@testable import Training
import XCTest

/// DinoKit's multi-crop draws against the official DataAugmentationDINO, measured by
/// Scripts/fixtures/ssl_augment.py (Fixtures/sslaug/stats.json): per crop kind, the rates at which
/// flip, colour jitter, grayscale, blur and solarize are applied, the crop area fraction and
/// aspect ratio distributions, the jitter factors and op order, the blur sigma; and on real pixels
/// the crop shapes and normalised value ranges. Tolerances are 4.5 standard errors of the
/// difference of two independent samples (binomial for rates and quantile levels).
final class MultiCropStatisticsTests: XCTestCase {
    static let kinds: [(String, CropKind)] = [("global1", .global1), ("global2", .global2), ("local", .local)]

    /// One DataAugmentationDINO call per draw, cycling the three photos as the script does.
    func drawPlans(calls: Int) throws -> [CropKind: [(CropRecord, Int, Int)]] {
        let augmenter = try MultiCropAugmenter(config: MultiCropConfig())
        let sizes = try SSLAugFixtures.decodedPhotos().map { ($0.width, $0.height) }
        var out: [CropKind: [(CropRecord, Int, Int)]] = [.global1: [], .global2: [], .local: []]
        for call in 0..<calls {
            let (w, h) = sizes[call % sizes.count]
            var rng = RunRandom(seed: 2024, UInt64(call))
            let kinds: [CropKind] = [.global1, .global2] + Array(repeating: .local, count: augmenter.config.localCropsNumber)
            for kind in kinds { out[kind, default: []].append((augmenter.plan(kind: kind, width: w, height: h, rng: &rng), w, h)) }
        }
        return out
    }

    func testDecisionsMatchTheOfficialTransforms() throws {
        let stats = try SSLAugFixtures.stats()
        let levels = try XCTUnwrap(stats["augment"]["quantile_levels"].doubles)
        let plans = try drawPlans(calls: 12000)
        for (name, kind) in Self.kinds {
            let official = stats["augment"]["decisions"]["crops"][name]
            let n2 = try XCTUnwrap(official["n"].int)
            let records = try XCTUnwrap(plans[kind])
            let n1 = records.count
            func rate(_ key: String, _ applied: (CropRecord) -> Bool) throws {
                let p1 = Double(records.filter { applied($0.0) }.count) / Double(n1)
                SampleCheck.rate(p1, n1, try XCTUnwrap(official["rates"][key].double), n2, "\(name) \(key) rate")
            }
            try rate("flip") { $0.flipped }
            try rate("jitter") { $0.jitterOrder != nil }
            try rate("grayscale") { $0.grayscale }
            try rate("blur") { $0.blurSigma != nil }
            try rate("solarize") { $0.solarized }

            let areas = records.map { r, w, h in Double(r.window.width * r.window.height) / Double(w * h) }
            let logRatios = records.map { r, _, _ in Foundation.log(Double(r.window.width) / Double(r.window.height)) }
            for (key, values) in [("area", areas), ("logratio", logRatios)] {
                let (m, sd) = SampleCheck.meanAndSD(values)
                SampleCheck.mean(m, n1, try XCTUnwrap(official[key]["mean"].double), n2, sd: sd, "\(name) \(key) mean")
                SampleCheck.quantiles(values, official: try XCTUnwrap(official[key]["quantiles"].doubles), levels: levels,
                                      officialCount: n2, "\(name) \(key)")
            }

            let jittered = records.map(\.0).filter { $0.jitterOrder != nil }
            let nj = try XCTUnwrap(official["jitter"]["n"].int)
            for (key, values) in [("b", jittered.map(\.brightness)), ("c", jittered.map(\.contrast)),
                                  ("s", jittered.map(\.saturation)), ("h", jittered.map(\.hue))] {
                let (m, sd) = SampleCheck.meanAndSD(values)
                SampleCheck.mean(m, values.count, try XCTUnwrap(official["jitter"]["mean"][key].double), nj, sd: sd, "\(name) jitter \(key)")
            }
            let firstRates = try XCTUnwrap(official["jitter"]["first_op_rates"].doubles)
            for op in 0..<4 {
                let p1 = Double(jittered.filter { $0.jitterOrder?.first == op }.count) / Double(jittered.count)
                SampleCheck.rate(p1, jittered.count, firstRates[op], nj, "\(name) jitter op \(op) first")
            }

            let sigmas = records.compactMap(\.0.blurSigma)
            if official["blur_sigma"].value != nil {
                let ns = try XCTUnwrap(official["blur_sigma"]["n"].int)
                let (m, sd) = SampleCheck.meanAndSD(sigmas)
                SampleCheck.mean(m, sigmas.count, try XCTUnwrap(official["blur_sigma"]["mean"].double), ns, sd: sd, "\(name) blur sigma")
                SampleCheck.quantiles(sigmas, official: try XCTUnwrap(official["blur_sigma"]["quantiles"].doubles), levels: levels,
                                      officialCount: ns, "\(name) blur sigma")
            } else {
                XCTAssertTrue(sigmas.isEmpty, "\(name): the official code never blurs this crop")
            }
        }
    }

    /// The official code's effective blur probabilities are 0 / 0.9 / 0.5 (its GaussianBlur passes
    /// 1 - p to RandomApply), and the defaults say so.
    func testBlurProbabilitiesAreTheAppliedOnes() throws {
        let stats = try SSLAugFixtures.stats()
        let c = MultiCropConfig()
        XCTAssertEqual(stats["augment"]["decisions"]["crops"]["global1"]["rates"]["blur"].double, 0)
        XCTAssertEqual(try XCTUnwrap(stats["augment"]["decisions"]["crops"]["global2"]["rates"]["blur"].double), 0.9, accuracy: 0.02)
        XCTAssertEqual(try XCTUnwrap(stats["augment"]["decisions"]["crops"]["local"]["rates"]["blur"].double), 0.5, accuracy: 0.01)
        XCTAssertEqual([c.blurProbabilityGlobal1, c.blurProbabilityGlobal2, c.blurProbabilityLocal], [0, 0.9, 0.5])
    }

    /// Whole crops on real pixels: shapes and normalised value ranges as the official transforms give.
    func testPixelsMatchTheOfficialRanges() throws {
        let stats = try SSLAugFixtures.stats()
        let official = stats["augment"]["pixels"]
        let augmenter = try MultiCropAugmenter(config: MultiCropConfig())
        let photos = try SSLAugFixtures.decodedPhotos()
        var means: [String: [[Double]]] = ["global": [], "local": []]
        var lows: [String: [Float]] = ["global": [Float](repeating: .infinity, count: 3), "local": [Float](repeating: .infinity, count: 3)]
        var highs: [String: [Float]] = ["global": [Float](repeating: -.infinity, count: 3), "local": [Float](repeating: -.infinity, count: 3)]
        for call in 0..<10 {
            var rng = RunRandom(seed: 77, UInt64(call))
            let crops = try augmenter.crops(of: photos[call % photos.count], rng: &rng)
            XCTAssertEqual(crops.count, 10)
            for (n, crop) in crops.enumerated() {
                let group = n < 2 ? "global" : "local"
                let size = n < 2 ? 224 : 98
                XCTAssertEqual([crop.pixels.width, crop.pixels.height], [size, size])
                var values = [Float](repeating: 0, count: 3 * size * size)
                values.withUnsafeMutableBufferPointer { augmenter.normalize(crop.pixels, into: $0.baseAddress!) }
                var channelMeans: [Double] = []
                for c in 0..<3 {
                    let plane = values[(c * size * size)..<((c + 1) * size * size)]
                    lows[group]![c] = min(lows[group]![c], plane.min()!)
                    highs[group]![c] = max(highs[group]![c], plane.max()!)
                    channelMeans.append(plane.reduce(0.0) { $0 + Double($1) } / Double(plane.count))
                }
                means[group]!.append(channelMeans)
            }
        }
        // The official shapes: [group, C, H, W, dtype], sorted by group.
        XCTAssertEqual(official["shapes"][0][0].value as? String, "global")
        XCTAssertEqual(official["shapes"][0].ints, [3, 224, 224])
        XCTAssertEqual(official["shapes"][1][0].value as? String, "local")
        XCTAssertEqual(official["shapes"][1].ints, [3, 98, 98])
        XCTAssertNil(official["shapes"][2].value)
        for group in ["global", "local"] {
            let o = official[group]
            let n2 = try XCTUnwrap(o["n"].int)
            let oMin = try XCTUnwrap(o["min"].doubles), oMax = try XCTUnwrap(o["max"].doubles)
            let oMean = try XCTUnwrap(o["crop_mean_mean"].doubles), oSD = try XCTUnwrap(o["crop_mean_std"].doubles)
            for c in 0..<3 {
                // The official extremes are the normalised 0 and 255: DinoKit's never go beyond them.
                XCTAssertGreaterThanOrEqual(Double(lows[group]![c]), oMin[c] - 1e-5, "\(group) channel \(c) min")
                XCTAssertLessThanOrEqual(Double(highs[group]![c]), oMax[c] + 1e-5, "\(group) channel \(c) max")
                let m = means[group]!.map { $0[c] }
                SampleCheck.mean(m.reduce(0, +) / Double(m.count), m.count, oMean[c], n2, sd: oSD[c], "\(group) channel \(c) crop mean")
            }
        }
    }
}
