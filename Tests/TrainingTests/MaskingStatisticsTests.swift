import Foundation
import TestSupport
@testable import Training
import XCTest

/// DinoKit's MaskingGenerator and collate mask policy against the official ones, measured by
/// Scripts/fixtures/ssl_augment.py (Fixtures/sslaug/stats.json "masking"): masked counts, how
/// often the target is reached exactly, connected blocks and their bounding boxes, row and
/// column coverage; and the collate's structure (exactly int(2B·0.5) masked crops, target
/// intervals from linspace(0.1, 0.5), upperbound). Tolerances: 4.5 standard errors of the
/// difference of the two samples.
final class MaskingStatisticsTests: XCTestCase {
    struct Block { var size: Int; var height: Int; var width: Int }

    /// 4-connected blocks of a row-major mask.
    static func blocks(_ mask: [Bool], height: Int, width: Int) -> [Block] {
        var seen = [Bool](repeating: false, count: mask.count)
        var out: [Block] = []
        for start in mask.indices where mask[start] && !seen[start] {
            var stack = [start]
            seen[start] = true
            var size = 0, y0 = Int.max, y1 = Int.min, x0 = Int.max, x1 = Int.min
            while let p = stack.popLast() {
                let y = p / width, x = p % width
                size += 1
                y0 = min(y0, y); y1 = max(y1, y); x0 = min(x0, x); x1 = max(x1, x)
                for (ny, nx) in [(y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)] where ny >= 0 && ny < height && nx >= 0 && nx < width {
                    let q = ny * width + nx
                    if mask[q] && !seen[q] { seen[q] = true; stack.append(q) }
                }
            }
            out.append(Block(size: size, height: y1 - y0 + 1, width: x1 - x0 + 1))
        }
        return out
    }

    /// Compares DinoKit's non-empty masks with the official summary `o` (mask_shape_stats).
    func compareShapes(_ masks: [[Bool]], _ o: JSONNode, levels: [Double], grid: Int, _ what: String) throws {
        let n2 = try XCTUnwrap(o["n"].int), n1 = masks.count
        let counts = masks.map { Double($0.filter { $0 }.count) }
        let (cm, csd) = SampleCheck.meanAndSD(counts)
        SampleCheck.mean(cm, n1, try XCTUnwrap(o["count"]["mean"].double), n2, sd: max(csd, 0.5), "\(what) count mean")
        SampleCheck.quantiles(counts, official: try XCTUnwrap(o["count"]["quantiles"].doubles), levels: levels, officialCount: n2, "\(what) count")
        let blocks = masks.map { Self.blocks($0, height: grid, width: grid) }
        let comps = blocks.map { Double($0.count) }
        let (km, ksd) = SampleCheck.meanAndSD(comps)
        SampleCheck.mean(km, n1, try XCTUnwrap(o["components"]["mean"].double), n2, sd: max(ksd, 0.1), "\(what) blocks per mask")
        let all = blocks.flatMap { $0 }
        for (key, values) in [("block_height", all.map { Double($0.height) }), ("block_width", all.map { Double($0.width) }),
                              ("block_fill", all.map { Double($0.size) / Double($0.height * $0.width) })] {
            let (m, sd) = SampleCheck.meanAndSD(values)
            // Blocks of one mask are correlated: count masks, not blocks, as the sample size.
            SampleCheck.mean(m, n1, try XCTUnwrap(o[key]["mean"].double), n2, sd: max(sd, 0.05), "\(what) \(key)")
        }
        let rows = try XCTUnwrap(o["row_frequency"].doubles), cols = try XCTUnwrap(o["column_frequency"].doubles)
        for r in 0..<grid {
            var rowHits = 0.0, colHits = 0.0
            for m in masks { for c in 0..<grid { rowHits += m[r * grid + c] ? 1 : 0; colHits += m[c * grid + r] ? 1 : 0 } }
            let total = Double(n1 * grid)
            // A row of one mask is all-or-nothing-ish: the mask, not the cell, is the unit.
            SampleCheck.rate(rowHits / total, n1, rows[r], n2, "\(what) row \(r) coverage")
            SampleCheck.rate(colHits / total, n1, cols[r], n2, "\(what) column \(r) coverage")
        }
    }

    func testGeneratorMatchesTheOfficial() throws {
        let stats = try SSLAugFixtures.stats()["masking"]
        let levels = try XCTUnwrap(stats["quantile_levels"].doubles)
        let generator = MaskingGenerator(globalSize: 224, patchSize: 14)
        XCTAssertEqual([generator.height, generator.width], try XCTUnwrap(stats["grid"].ints))
        XCTAssertEqual(generator.maxNumPatches, try XCTUnwrap(stats["max_num_patches"].double))
        XCTAssertEqual(generator.minNumPatches, try XCTUnwrap(stats["min_num_patches"].int))
        for target in [13, 25, 51, 64, 90, 102, 128] {
            let o = stats["generator"]["\(target)"]
            var rng = RunRandom(seed: 5, UInt64(target))
            let masks = (0..<3000).map { _ in generator.generate(target, rng: &rng) }
            let counts = masks.map { $0.filter { $0 }.count }
            XCTAssertLessThanOrEqual(counts.max() ?? 0, target, "never more than the target")
            let exact = Double(counts.filter { $0 == target }.count) / Double(counts.count)
            SampleCheck.rate(exact, counts.count, try XCTUnwrap(o["exact_rate"].double), try XCTUnwrap(o["n"].int), "target \(target) reached exactly")
            try compareShapes(masks, o, levels: levels, grid: 16, "target \(target)")
        }
    }

    func testCollatePolicyMatchesTheOfficial() throws {
        let stats = try SSLAugFixtures.stats()["masking"]
        let o = stats["collate"]
        let levels = try XCTUnwrap(stats["quantile_levels"].doubles)
        let b = try XCTUnwrap(o["batch_size"].int), batches = 1500
        let generator = MaskingGenerator(globalSize: 224, patchSize: 14)
        let config = MaskConfig()
        var targets = [[Int]](repeating: [], count: b)
        var nonEmpty: [[Bool]] = []
        var totals: [Double] = []
        for step in 0..<batches {
            var rng = RunRandom(seed: 9, UInt64(step))
            let r = MaskCollate.masks(crops: 2 * b, generator: generator, config: config, rng: &rng)
            XCTAssertEqual(r.masks.count, 2 * b * 256)
            XCTAssertEqual(r.upperbound, try XCTUnwrap(o["upperbound"][0].int))
            XCTAssertEqual(r.targets.count, b)
            for (i, t) in r.targets.enumerated() { targets[i].append(t) }
            let rows = (0..<(2 * b)).map { Array(r.masks[($0 * 256)..<(($0 + 1) * 256)]) }
            XCTAssertEqual(rows.filter { !$0.contains(true) }.count, try XCTUnwrap(o["empty_per_batch"]["min"].int))
            nonEmpty += rows.filter { $0.contains(true) }
            totals.append(Double(r.masks.filter { $0 }.count))
        }
        let nb = try XCTUnwrap(o["batches"].int)
        let tMean = try XCTUnwrap(o["target_mean"].doubles), tMin = try XCTUnwrap(o["target_min"].ints), tMax = try XCTUnwrap(o["target_max"].ints)
        let probs = MaskCollate.linspace(0.1, 0.5, b + 1)
        for i in 0..<b {
            // Uniform on [N·probs[i], N·probs[i+1]) before int(): sd = width / sqrt(12).
            let sd = 256 * Double(probs[i + 1] - probs[i]) / 12.0.squareRoot()
            let mine = targets[i].map(Double.init)
            SampleCheck.mean(mine.reduce(0, +) / Double(mine.count), mine.count, tMean[i], nb, sd: sd, "collate target \(i)")
            XCTAssertGreaterThanOrEqual(targets[i].min() ?? -1, tMin[i] - 1, "collate target \(i) lower end")
            XCTAssertLessThanOrEqual(targets[i].max() ?? .max, tMax[i] + 1, "collate target \(i) upper end")
        }
        let (m, _) = SampleCheck.meanAndSD(totals)
        SampleCheck.mean(m, batches, try XCTUnwrap(o["n_masked_per_batch"]["mean"].double), nb,
                         sd: try XCTUnwrap(o["n_masked_per_batch"]["std"].double), "masked patches per batch")
        try compareShapes(nonEmpty, o["masked"], levels: levels, grid: 16, "collate")
    }
}
