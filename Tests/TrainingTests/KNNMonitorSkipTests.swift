import Foundation
import TestSupport
import Training
import XCTest

/// Issue 15: one undecodable file in `--knn-data` aborted `train ssl` at its first epoch end
/// (and left a half-made run folder), while `--data` and `train finetune` skip such files. The
/// monitor now skips them at construction, before any run folder exists, and lists them.
final class KNNMonitorSkipTests: XCTestCase {
    func testUndecodableFilesAreSkippedAndListed() throws {
        let root = makeTemporaryDirectory("knn-skip")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let fm = FileManager.default
        for c in ["a", "b"] { try fm.createDirectory(atPath: "\(root)/\(c)", withIntermediateDirectories: true) }
        for (src, dst) in [("china_64x48_rgb8.png", "a/1.png"), ("flower_20x30_tiny.png", "a/2.png"),
                           ("china_320x272_q90_420.jpg", "b/3.jpg"), ("flower_200x150_gray.jpg", "b/4.jpg"),
                           ("bad_idat_stream.png", "a/broken.png")] {
            try fm.copyItem(atPath: fixturePath("images/" + src), toPath: "\(root)/\(dst)")
        }
        let monitor = try KNNMonitor(folder: root, seed: 1)
        XCTAssertEqual(monitor.skipped.map(\.path), ["\(root)/a/broken.png"])
        XCTAssertFalse(monitor.skipped[0].reason.isEmpty)
        XCTAssertEqual(monitor.reference.count + monitor.queries.count, 4)
    }
}
