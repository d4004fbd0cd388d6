import Foundation
import Images
import Kernels
import TestSupport
@testable import Training
import XCTest

/// MultiCropSource and ImageList: a batch is a pure function of (seed, step) and the files; the
/// layout is collate_data_and_cast's (crop-major rows, masks per global-crop row); unreadable
/// files are reported at scan time or replaced deterministically at batch time.
final class MultiCropSourceTests: XCTestCase {
    var folder = ""

    /// A small data folder: four photos in two class folders, one file that is not an image, and
    /// one JPEG that fails only when decoded (truncated).
    override func setUpWithError() throws {
        folder = makeTemporaryDirectory("ssldata")
        let fm = FileManager.default
        try fm.createDirectory(atPath: folder + "/b", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: folder + "/a/nested", withIntermediateDirectories: true)
        let copies = [("china_320x272_q90_420.jpg", "b/x.jpg"), ("flower_264x330_q75_444_progressive.jpg", "a/nested/y.JPG"),
                      ("china_257x171_q60_422.jpg", "a/z.jpeg"), ("china_64x48_rgb8.png", "b/w.png"),
                      ("bad_truncated.jpg", "b/truncated.jpg"), ("bad_not_an_image.txt", "a/fake.png")]
        for (from, to) in copies { try fm.copyItem(atPath: fixturePath("images/" + from), toPath: folder + "/" + to) }
        try Data("notes".utf8).write(to: URL(fileURLWithPath: folder + "/a/readme.txt"))
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: folder) }

    static var smallConfig: MultiCropConfig {
        var c = MultiCropConfig()
        c.globalCropsSize = 56
        c.localCropsSize = 28
        c.localCropsNumber = 2
        return c
    }

    func source(seed: UInt64 = 7, batch: Int = 2, threads: Int = 1) throws -> MultiCropSource {
        try MultiCropSource(images: try ImageList(scanning: folder), config: Self.smallConfig, patchSize: 14,
                            batchSize: batch, seed: seed, parallelism: Parallelism(threads: threads))
    }

    func testScanOrderAndHeaderProblems() throws {
        let list = try ImageList(scanning: folder)
        let relative = list.paths.map { String($0.dropFirst(folder.count + 1)) }
        XCTAssertEqual(relative, ["a/z.jpeg", "a/nested/y.JPG", "b/truncated.jpg", "b/w.png", "b/x.jpg"])
        XCTAssertEqual(list.problems.map { String($0.path.dropFirst(folder.count + 1)) }, ["a/fake.png"])
        XCTAssertTrue(list.problems[0].reason.contains("not a JPEG or PNG"), list.problems[0].reason)
        XCTAssertThrowsError(try ImageList(scanning: folder + "/missing"))
        let empty = makeTemporaryDirectory("ssldata-empty")
        defer { try? FileManager.default.removeItem(atPath: empty) }
        XCTAssertThrowsError(try ImageList(scanning: empty)) { XCTAssertTrue("\($0)".contains("no usable images"), "\($0)") }
    }

    func testLayoutIsCollates() throws {
        let s = try source(batch: 2)
        XCTAssertEqual(s.imageCount, 5)
        XCTAssertEqual(s.stepsPerEpoch, 2)
        let step = 3
        let batch = try s.batch(step: step)
        try batch.validate(channels: 3, patch: 14, what: "test")
        XCTAssertEqual(batch.localCount, 2)
        let g = 3 * 56 * 56, l = 3 * 28 * 28
        // Row c·B + i is crop c of image i: remake image i's crops from its own generator.
        let indices = s.imageIndices(step: step)
        for (slot, index) in indices.enumerated() {
            let image = try s.decodeImage(index: index, step: step, slot: slot)
            var rng = RunRandom(seed: 7, MultiCropSource.Stream.augment.rawValue, UInt64(step), UInt64(slot))
            let crops = try s.augmenter.crops(of: image, rng: &rng)
            for (n, crop) in crops.enumerated() {
                let size = n < 2 ? g : l
                var expected = [Float](repeating: 0, count: size)
                expected.withUnsafeMutableBufferPointer { s.augmenter.normalize(crop.pixels, into: $0.baseAddress!) }
                let row = n < 2 ? n * 2 + slot : (n - 2) * 2 + slot
                let got = n < 2 ? Array(batch.globalCrops[(row * g)..<((row + 1) * g)]) : Array(batch.localCrops[(row * l)..<((row + 1) * l)])
                XCTAssertEqual(got, expected, "crop \(n) of slot \(slot)")
            }
        }
        // int(2B · 0.5) = B masked global crops, the rest empty.
        let p = 16
        let masked = (0..<4).filter { r in batch.masks[(r * p)..<((r + 1) * p)].contains(true) }
        XCTAssertEqual(masked.count, 2)
    }

    func testSameSeedAndStepSameBytes() throws {
        let a = try source(), b = try source(threads: 2)
        for step in [0, 1, 4] {
            let x = try a.batch(step: step), y = try b.batch(step: step)
            XCTAssertEqual(x.globalCrops, y.globalCrops, "step \(step)")
            XCTAssertEqual(x.localCrops, y.localCrops, "step \(step)")
            XCTAssertEqual(x.masks, y.masks, "step \(step)")
        }
        // A resumed source (fresh object, no history) draws the same batch as one that ran on.
        let fresh = try source()
        XCTAssertEqual(try fresh.batch(step: 4).globalCrops, try a.batch(step: 4).globalCrops)
    }

    func testDifferentStepsAndSeedsDiffer() throws {
        let a = try source(), c = try source(seed: 8)
        let x0 = try a.batch(step: 0), x1 = try a.batch(step: 1), y0 = try c.batch(step: 0)
        XCTAssertNotEqual(x0.globalCrops, x1.globalCrops)
        XCTAssertNotEqual(x0.globalCrops, y0.globalCrops)
        XCTAssertNotEqual(x0.localCrops, x1.localCrops)
    }

    func testEpochsVisitEveryImageOnce() throws {
        let s = try MultiCropSource(images: try ImageList(scanning: folder), config: Self.smallConfig, batchSize: 1, seed: 3)
        for epoch in 0..<3 {
            let seen = (0..<s.stepsPerEpoch).flatMap { s.imageIndices(step: epoch * s.stepsPerEpoch + $0) }
            XCTAssertEqual(seen.sorted(), Array(0..<5), "epoch \(epoch)")
        }
        XCTAssertNotEqual(s.permutation(epoch: 0), s.permutation(epoch: 1))
    }

    /// The truncated JPEG passes the header check, fails to decode, and is replaced by a
    /// deterministic other image; the failure is reported once with its reason.
    func testUndecodableImageIsReplacedAndReported() throws {
        let s = try MultiCropSource(images: try ImageList(scanning: folder), config: Self.smallConfig, batchSize: 1, seed: 3)
        let bad = try XCTUnwrap(s.images.paths.firstIndex { $0.hasSuffix("truncated.jpg") })
        let step = try XCTUnwrap((0..<50).first { s.imageIndices(step: $0) == [bad] })
        let first = try s.batch(step: step)
        XCTAssertEqual(s.decodeFailures.map(\.path), [s.images.paths[bad]])
        XCTAssertTrue(s.decodeFailures[0].reason.contains("truncated"), s.decodeFailures[0].reason)
        let again = try MultiCropSource(images: s.images, config: Self.smallConfig, batchSize: 1, seed: 3).batch(step: step)
        XCTAssertEqual(first.globalCrops, again.globalCrops)
    }

    func testConfigRoundTripsAndValidates() throws {
        let data = try JSONEncoder().encode(MultiCropConfig())
        XCTAssertEqual(try JSONDecoder().decode(MultiCropConfig.self, from: data), MultiCropConfig())
        var bad = MultiCropConfig()
        bad.globalCropsScale = [0.5, 0.2]
        XCTAssertThrowsError(try bad.validate())
        bad = MultiCropConfig()
        bad.blurKernelSize = 8
        XCTAssertThrowsError(try MultiCropAugmenter(config: bad))
        var mask = MaskConfig()
        mask.ratioMax = 1.5
        XCTAssertThrowsError(try mask.validate())
    }
}
