import Foundation
import TestSupport
import XCTest
@testable import Training

/// DinoKit's schedules against the official `CosineScheduler` / `build_schedulers` values
/// (Fixtures/trainrun/schedules.json, made by Scripts/fixtures/trainrun_schedules.py).
final class SSLSchedulesTests: XCTestCase {
    struct Fixture: Decodable {
        struct Case: Decodable {
            var name: String
            var steps_per_epoch: Int
            var expected: [String: [Double]]
        }
        struct Raw: Decodable {
            var base: Double, final: Double, total_iters: Int, warmup_iters: Int, start_warmup_value: Double, freeze_iters: Int
            var values: [Double]
        }
        var cases: [Case]
        var raw: Raw
    }

    func load() throws -> (Fixture, [[String: Any]]) {
        let data = try Data(contentsOf: URL(fileURLWithPath: fixturePath("trainrun/schedules.json")))
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        let configs = (object?["cases"] as? [[String: Any]] ?? []).map { $0["config"] as? [String: Any] ?? [:] }
        return (try JSONDecoder().decode(Fixture.self, from: data), configs)
    }

    /// numpy's cos and Foundation's may differ in the last bit.
    func assertClose(_ a: [Double], _ b: [Double], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        for (i, (x, y)) in zip(a, b).enumerated() where abs(x - y) > 4 * Double.ulpOfOne * Swift.max(abs(y), 1e-300) {
            XCTFail("\(what)[\(i)]: \(x) vs official \(y)", file: file, line: line)
            return
        }
    }

    func testBuildSchedulersMatchOfficial() throws {
        let (fixture, configs) = try load()
        XCTAssertEqual(fixture.cases.count, 3)
        for (c, json) in zip(fixture.cases, configs) {
            let config = try SSLRunConfig.load(json: try JSONSerialization.data(withJSONObject: json), file: c.name)
            let s = try SSLSchedules(config: config, stepsPerEpoch: c.steps_per_epoch)
            let n = s.totalSteps + 1
            let hyper = (0..<n).map { s.hyperparameters(step: $0) }
            assertClose(hyper.map(\.lr), c.expected["lr"] ?? [], "\(c.name) lr")
            assertClose(hyper.map(\.lastLayerLR), c.expected["last_layer_lr"] ?? [], "\(c.name) last_layer_lr")
            assertClose(hyper.map(\.weightDecay), c.expected["wd"] ?? [], "\(c.name) wd")
            assertClose(hyper.map(\.teacherMomentum), c.expected["momentum"] ?? [], "\(c.name) momentum")
            assertClose(hyper.map(\.teacherTemperature), c.expected["teacher_temp"] ?? [], "\(c.name) teacher_temp")
        }
    }

    func testRawSchedulerWithFreezeAndWarmup() throws {
        let r = try load().0.raw
        let s = try CosineSchedule(base: r.base, final: r.final, totalIters: r.total_iters, warmupIters: r.warmup_iters,
                                   startWarmupValue: r.start_warmup_value, freezeIters: r.freeze_iters)
        assertClose((0...r.total_iters).map { s[$0] }, r.values, "raw")
    }

    func testConfigRejectsUnknownKeysAndParsesBlockRanges() throws {
        XCTAssertThrowsError(try SSLRunConfig.load(json: Data(#"{"epoch": 3}"#.utf8), file: "run.json")) { error in
            XCTAssertTrue("\(error)".contains("unknown key 'epoch'"), "\(error)")
        }
        let c = try SSLRunConfig.load(json: Data(#"{"epochs": 3, "freeze_blocks": [0, 1]}"#.utf8), file: "run.json")
        XCTAssertEqual(c.epochs, 3)
        XCTAssertEqual(c.batchSize, SSLRunConfig().batchSize)
        XCTAssertEqual(try SSLRunConfig.load(json: try c.encoded(), file: "again"), c)
        XCTAssertEqual(try SSLRunConfig.parseBlocks("0-3,6"), [0, 1, 2, 3, 6])
        XCTAssertThrowsError(try SSLRunConfig.parseBlocks("3-1"))
    }
}
