import Datasets
import DINOv2
import Evaluation
import Formats
import Foundation
import Images
import Kernels
import TestSupport
import XCTest

/// An interrupted `embed` continues from its partial output and ends with the same bytes as an
/// uninterrupted run; other arguments start over.
final class EmbedResumeTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws { directory = makeTemporaryDirectory("embed-resume") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    func embedder(_ kind: EmbedOutputKind = .patch) throws -> Embedder {
        Embedder(model: try EmbedFixtures.model(), preprocess: .resize(112), output: kind, batchSize: 2, decodeThreads: 2)
    }

    var paths: [String] { EmbedFixtures.photos + [fixturePath("images/bad_truncated.jpg")] }

    func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    func testInterruptedAfterEachBatchCountResumesToTheSameBytes() throws {
        let e = try embedder()
        let key = e.key(paths: paths, weightsID: "fixture")
        let reference = directory + "/reference.npy"
        let full = try e.run(paths: paths, out: reference, key: key)
        XCTAssertEqual(full.rows, 6)
        let expected = try bytes(reference)
        for k in 1...3 {
            let out = directory + "/resumed\(k).npy"
            let first = try e.run(paths: paths, out: out, key: key, stopAfterBatches: k)
            XCTAssertFalse(first.completed)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
            XCTAssertTrue(FileManager.default.fileExists(atPath: Embedder.partialPath(out)))
            var events: [String] = []
            let second = try e.run(paths: paths, out: out, key: key) { event in
                if case let .resuming(done, total) = event { events.append("resuming \(done)/\(total)") }
                if case .startingOver = event { events.append("starting over") }
            }
            XCTAssertTrue(second.completed)
            XCTAssertEqual(second.resumedFrom, 2 * k)
            XCTAssertEqual(events, ["resuming \(2 * k)/\(paths.count)"])
            XCTAssertEqual(second.keptIndices, full.keptIndices)
            XCTAssertEqual(second.failures, full.failures)
            XCTAssertEqual(try bytes(out), expected, "stopped after \(k) batches")
            XCTAssertFalse(FileManager.default.fileExists(atPath: Embedder.partialPath(out)))
            XCTAssertFalse(FileManager.default.fileExists(atPath: Embedder.progressPath(out)))
        }
    }

    func testRowsWrittenAfterTheLastRecordAreDropped() throws {
        // A crash between appending a batch's rows and recording them leaves extra bytes.
        let e = try embedder()
        let key = e.key(paths: paths, weightsID: "fixture")
        let reference = directory + "/reference.npy"
        _ = try e.run(paths: paths, out: reference, key: key)
        let out = directory + "/crashed.npy"
        _ = try e.run(paths: paths, out: out, key: key, stopAfterBatches: 1)
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: Embedder.partialPath(out)))
        handle.seekToEndOfFile()
        handle.write(Data(repeating: 0x7F, count: 1000))
        handle.closeFile()
        let run = try e.run(paths: paths, out: out, key: key)
        XCTAssertEqual(run.resumedFrom, 2)
        XCTAssertEqual(try bytes(out), try bytes(reference))
    }

    func testOtherArgumentsStartOver() throws {
        let patch = try embedder(.patch), cls = try embedder(.cls)
        let out = directory + "/feats.npy"
        _ = try patch.run(paths: paths, out: out, key: patch.key(paths: paths, weightsID: "fixture"), stopAfterBatches: 1)
        var reasons: [String] = []
        let run = try cls.run(paths: paths, out: out, key: cls.key(paths: paths, weightsID: "fixture")) { event in
            if case let .startingOver(reason) = event { reasons.append(reason) }
        }
        XCTAssertEqual(reasons.count, 1)
        XCTAssertEqual(run.resumedFrom, 0)
        XCTAssertEqual(try NPY.read(path: out).shape.dims, [6, 16])
        let expected = try EmbedFixtures.expected("resize112.cls").floats()
        XCTAssertLessThanOrEqual(EmbedFixtures.maxAbsDifference(try NPY.read(path: out).floats(), expected), 1e-4)
        // A different file list is other arguments too.
        XCTAssertNotEqual(cls.key(paths: paths, weightsID: "w"), cls.key(paths: Array(paths.dropLast()), weightsID: "w"))
        XCTAssertNotEqual(cls.key(paths: paths, weightsID: "w"), cls.key(paths: paths, weightsID: "w2"))
        // So is a precision: rows made at f32 are not continued at bf16, nor the other way.
        var keys = [cls.key(paths: paths, weightsID: "w")]
        for precision in Precision.allCases where precision != .f32 {
            var reduced = cls
            reduced.model = try EmbedFixtures.model(precision: precision)
            keys.append(reduced.key(paths: paths, weightsID: "w"))
        }
        XCTAssertEqual(Set(keys).count, Precision.allCases.count, "\(keys)")
    }
}
