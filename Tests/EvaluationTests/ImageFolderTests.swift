import Datasets
import Evaluation
import Foundation
import TestSupport
import XCTest

/// ImageFolder lists classes and files in torchvision's order (Fixtures/probe/imagefolder.json is
/// torchvision's `ImageFolder(root).samples` for the committed tree of empty files).
final class ImageFolderTests: XCTestCase {
    struct Expected: Decodable {
        var classes: [String]
        var samples: [[Sample]]
        enum Sample: Decodable {
            case path(String), label(Int)
            init(from decoder: Decoder) throws {
                let c = try decoder.singleValueContainer()
                if let s = try? c.decode(String.self) { self = .path(s) } else { self = .label(try c.decode(Int.self)) }
            }
        }
    }

    func testOrderMatchesTorchvision() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: fixturePath("probe/imagefolder.json")))
        let expected = try JSONDecoder().decode(Expected.self, from: data)
        let root = fixturePath("probe/imagefolder")
        let folder = try ImageFolder(root: root)
        XCTAssertEqual(folder.classes, expected.classes)
        let paths = expected.samples.map { s -> String in if case let .path(p) = s[0] { return root + "/" + p } else { return "" } }
        let labels = expected.samples.map { s -> Int in if case let .label(l) = s[1] { return l } else { return -1 } }
        XCTAssertEqual(folder.paths.map { $0.precomposedStringWithCanonicalMapping }, paths.map { $0.precomposedStringWithCanonicalMapping })
        XCTAssertEqual(folder.labels, labels)
    }

    func testDecodesRealImagesAndFingerprintsTheTree() throws {
        let root = makeTemporaryDirectory("imagefolder")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/flower", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/china", withIntermediateDirectories: true)
        try fm.copyItem(atPath: fixturePath("images/flower_20x30_tiny.png"), toPath: root + "/flower/a.png")
        try fm.copyItem(atPath: fixturePath("images/china_64x48_rgb8.png"), toPath: root + "/china/a.png")
        let folder = try ImageFolder(root: root)
        XCTAssertEqual(folder.classes, ["china", "flower"])
        XCTAssertEqual(folder.labels, [0, 1])
        let image = try folder.image(at: 0)
        XCTAssertEqual([image.width, image.height], [64, 48])
        let before = try folder.fingerprint()
        XCTAssertEqual(before, try ImageFolder(root: root).fingerprint())
        try fm.copyItem(atPath: fixturePath("images/flower_20x30_tiny.jpg"), toPath: root + "/flower/b.jpg")
        XCTAssertNotEqual(before, try ImageFolder(root: root).fingerprint())
    }

    /// Issue 15: a folder with two symbolic links to itself made the walk exponential (every
    /// path through the links was a new folder). Each real folder is now entered once.
    func testLinksBackToAFolderAreWalkedOnce() throws {
        let root = makeTemporaryDirectory("imagefolder-loops")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/cat/sub", withIntermediateDirectories: true)
        for p in ["/cat/a.png", "/cat/sub/b.png"] { XCTAssertTrue(fm.createFile(atPath: root + p, contents: Data())) }
        for (link, target) in [("/cat/self1", root + "/cat"), ("/cat/self2", root + "/cat"), ("/cat/sub/up", root + "/cat"),
                               ("/cat/sub/self", ".")] {
            try fm.createSymbolicLink(atPath: root + link, withDestinationPath: target)
        }
        let start = Date()
        let folder = try ImageFolder(root: root)
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        XCTAssertEqual(folder.paths, [root + "/cat/a.png", root + "/cat/sub/b.png"])
        // The same walk serves training data (ImageList): hidden names are skipped there.
        XCTAssertTrue(fm.createFile(atPath: root + "/cat/.hidden.png", contents: Data()))
        XCTAssertEqual(ImageFileWalk.files(under: root, extensions: [".png"], skipHidden: true),
                       [root + "/cat/a.png", root + "/cat/sub/b.png"])
    }

    func testErrorsNameTheProblem() throws {
        XCTAssertThrowsError(try ImageFolder(root: "/nonexistent/tree"))
        let root = makeTemporaryDirectory("imagefolder-bad")
        defer { try? FileManager.default.removeItem(atPath: root) }
        XCTAssertThrowsError(try ImageFolder(root: root)) { error in
            XCTAssertTrue("\(error)".contains("no class folders"), "\(error)")
        }
        try FileManager.default.createDirectory(atPath: root + "/empty", withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: root + "/empty/notes.txt", contents: Data()))
        XCTAssertThrowsError(try ImageFolder(root: root)) { error in
            XCTAssertTrue("\(error)".contains("'empty'"), "\(error)")
        }
    }
}
