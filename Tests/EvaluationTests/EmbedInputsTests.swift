import Datasets
import DINOv2
import Evaluation
import Formats
import Foundation
import Images
import TestSupport
import XCTest

/// Unreadable files are skipped with a reason (or stop a strict run, naming the file), the file
/// list keeps the rows' order, and a folder run writes its labels and class names.
final class EmbedInputsTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws { directory = makeTemporaryDirectory("embed-inputs") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    let bad = ["bad_truncated.jpg", "bad_not_an_image.txt", "bad_empty.jpg", "bad_idat_crc.png", "bad_gif.gif"].map { fixturePath("images/" + $0) }

    func testUnreadableFilesAreSkippedAndListed() throws {
        let photos = EmbedFixtures.photos
        // Bad files before, between and after the photos, some batches holding only bad files.
        let paths = [bad[0]] + photos[0..<2] + [bad[1], bad[2]] + photos[2..<5] + [bad[3]] + [photos[5], bad[4]]
        let e = Embedder(model: try EmbedFixtures.model(), preprocess: .eval, output: .cls, batchSize: 2, decodeThreads: 2)
        let out = directory + "/feats.npy"
        var warned: [String] = []
        let run = try e.run(paths: paths, out: out, key: e.key(paths: paths, weightsID: "fixture")) { event in
            if case let .skipped(f) = event { warned.append(f.path) }
        }
        XCTAssertEqual(run.failures.map(\.path), bad)
        XCTAssertEqual(warned, bad)
        for f in run.failures { XCTAssertFalse(f.reason.isEmpty) }
        XCTAssertEqual(run.keptIndices.map { paths[$0] }, photos)
        let got = try NPY.read(path: out)
        XCTAssertEqual(got.shape.dims, [6, 16])
        XCTAssertLessThanOrEqual(EmbedFixtures.maxAbsDifference(got.floats(), try EmbedFixtures.expected("eval.cls").floats()), 1e-4)

        let list = try Embedder.writeSidecars(run, paths: paths, out: out)
        XCTAssertEqual(list, directory + "/feats.files.txt")
        XCTAssertEqual(try String(contentsOfFile: list, encoding: .utf8), photos.map { $0 + "\n" }.joined())
    }

    func testStrictStopsAtTheFirstUnreadableFileNamingIt() throws {
        let paths = Array(EmbedFixtures.photos[0..<3]) + [bad[0]] + [EmbedFixtures.photos[3]]
        let e = Embedder(model: try EmbedFixtures.model(), preprocess: .eval, output: .cls, batchSize: 2, decodeThreads: 2)
        let out = directory + "/feats.npy"
        XCTAssertThrowsError(try e.run(paths: paths, out: out, key: e.key(paths: paths, weightsID: "f"), strict: true)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("bad_truncated.jpg"), text)
            XCTAssertTrue(text.contains("truncated"), text)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    /// Issue 15: when no input could be read, embed wrote a (0, D) array and succeeded. Now it
    /// writes nothing (no output, no partial files) and says why; a directory is one such input.
    func testNothingReadableWritesNothingAndSaysSo() throws {
        let paths = [directory + "/nosuch.jpg", directory, bad[0]]
        let e = Embedder(model: try EmbedFixtures.model(), preprocess: .eval, output: .cls, batchSize: 2, decodeThreads: 2)
        let out = directory + "/feats.npy"
        XCTAssertThrowsError(try e.run(paths: paths, out: out, key: e.key(paths: paths, weightsID: "f"))) { error in
            guard case let .nothingProduced(o, inputs, first)? = error as? EvaluationError else { return XCTFail("\(error)") }
            XCTAssertEqual(o, out)
            XCTAssertEqual(inputs, 3)
            XCTAssertTrue(first.contains("nosuch.jpg"), first)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), [])
    }

    func testFolderRunWritesLabelsAndClassNames() throws {
        // An ImageFolder tree of the photos: classes "china" and "flower", plus one bad file.
        let root = directory + "/tree"
        for name in ["china", "flower"] {
            try FileManager.default.createDirectory(atPath: root + "/" + name, withIntermediateDirectories: true)
        }
        for photo in EmbedFixtures.photos {
            let name = (photo as NSString).lastPathComponent
            try FileManager.default.copyItem(atPath: photo, toPath: root + "/" + (name.hasPrefix("china") ? "china" : "flower") + "/" + name)
        }
        try FileManager.default.copyItem(atPath: bad[0], toPath: root + "/china/zz_bad.jpg")
        let folder = try ImageFolder(root: root)
        XCTAssertEqual(folder.classes, ["china", "flower"])
        let e = Embedder(model: try EmbedFixtures.model(), preprocess: .eval, output: .cls, batchSize: 3, decodeThreads: 2)
        let out = directory + "/feats.npy", labels = directory + "/labels.npy"
        let run = try e.run(paths: folder.paths, out: out, key: e.key(paths: folder.paths, weightsID: "f"))
        try Embedder.writeSidecars(run, paths: folder.paths, out: out, labels: (labels, folder.labels, folder.classes))

        let names = folder.paths.map { ($0 as NSString).lastPathComponent }
        let keptNames = run.keptIndices.map { names[$0] }
        XCTAssertEqual(keptNames, ["china_160x120_cmyk.jpg", "china_257x171_q60_422.jpg", "china_320x272_q90_420.jpg",
                                   "flower_200x150_gray.jpg", "flower_20x30_tiny.jpg", "flower_264x330_q75_444_progressive.jpg"])
        let labelTensor = try NPY.read(path: labels)
        XCTAssertEqual(labelTensor.dtype, .i64)
        XCTAssertEqual(try LabelFile.load(npy: labels), [0, 0, 0, 1, 1, 1])
        XCTAssertEqual(try String(contentsOfFile: Embedder.classesPath(labels: labels), encoding: .utf8), "china\nflower\n")
        XCTAssertEqual(try String(contentsOfFile: Embedder.fileListPath(out), encoding: .utf8),
                       run.keptIndices.map { folder.paths[$0] + "\n" }.joined())
        // Rows follow the folder order: compare each with the script's row for that photo.
        let expected = try EmbedFixtures.expected("eval.cls").floats(), got = try NPY.read(path: out).floats()
        let order = EmbedFixtures.photos.map { ($0 as NSString).lastPathComponent }
        for (row, name) in keptNames.enumerated() {
            let i = try XCTUnwrap(order.firstIndex(of: name))
            XCTAssertLessThanOrEqual(EmbedFixtures.maxAbsDifference(Array(got[(row * 16)..<((row + 1) * 16)]),
                                                                    Array(expected[(i * 16)..<((i + 1) * 16)])), 1e-4, name)
        }
    }
}
