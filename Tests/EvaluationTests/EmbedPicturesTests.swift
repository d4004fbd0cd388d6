import DINOv2
import Evaluation
import Formats
import Foundation
import Images
import TensorStore
import TestSupport
import XCTest

/// The math behind `dinokit attention` and `dinokit pca` against the official model and NumPy,
/// and that their pictures are written.
final class EmbedPicturesTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws { directory = makeTemporaryDirectory("embed-pictures") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    func evalBatch() throws -> Tensor {
        try Preprocess.eval.batch(images: EmbedFixtures.photos.map { try ImageDecoder.decode(path: $0) })
    }

    func testLastBlockAttentionMatchesTheOfficialAttention() throws {
        let model = try EmbedFixtures.model()
        let attention = try model.lastBlockAttention(try evalBatch())
        XCTAssertEqual(attention.probabilities.shape.dims, [6, 2, 257, 257])
        let expected = try EmbedFixtures.expected("eval.attention_cls") // (N, heads, T): the cls query
        XCTAssertEqual(expected.shape.dims, [6, 2, 257])
        let all = attention.probabilities.floats(), want = expected.floats()
        var worst: Float = 0
        for b in 0..<6 {
            for h in 0..<2 {
                let row = ((b * 2 + h) * 257) * 257
                for t in 0..<257 { worst = max(worst, abs(all[row + t] - want[(b * 2 + h) * 257 + t])) }
                // clsToPatches is the patch part of that row.
                XCTAssertEqual(attention.clsToPatches(image: b)[h], Array(all[(row + 1)..<(row + 257)]))
            }
        }
        XCTAssertLessThanOrEqual(worst, 1e-5)
    }

    func testPrincipalComponentsMatchNumPy() throws {
        let patches = try EmbedFixtures.expected("eval.patch").floats()
        let image0 = Array(patches[0..<(256 * 16)])
        let pca = PrincipalComponents(image0, rows: 256, columns: 16, components: 4)
        let variances = try EmbedFixtures.expected("eval.pca_variance")
        let wantVariances = try variances.withContiguousBytes { Array($0.bindMemory(to: Double.self)) }
        for (got, want) in zip(pca.variances, wantVariances) { XCTAssertEqual(got, want, accuracy: 1e-6 * wantVariances[0]) }
        let projected = pca.project(image0, rows: 256)
        let want = try EmbedFixtures.expected("eval.pca").floats() // (3, 256)
        for c in 0..<3 {
            let worst = (0..<256).map { abs(projected[c][$0] - Double(want[c * 256 + $0])) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst, 1e-4, "component \(c)")
        }
    }

    func testOtsuSplitsTwoClusters() {
        let low: [Double] = (0..<100).map { Double($0 % 10) * 0.01 }
        let high: [Double] = (0..<50).map { 5 + Double($0 % 7) * 0.01 }
        let values = low + high
        let t = PatchPCAMap.otsuThreshold(values)
        XCTAssertGreaterThan(t, 0.09)
        XCTAssertLessThanOrEqual(t, 5)
    }

    func testPCAMapMarksACentralObjectAsForeground() throws {
        // A synthetic 8x8 grid: a central 4x4 object with one feature pattern, a border with another.
        var features = [Float](), rows = 8, cols = 8
        var state: UInt32 = 12345
        func noise() -> Float { state = state &* 1664525 &+ 1013904223; return Float(state >> 8) / Float(1 << 24) * 0.1 }
        for r in 0..<rows {
            for c in 0..<cols {
                let object = (2..<6).contains(r) && (2..<6).contains(c)
                for j in 0..<8 {
                    let sign: Float = (object == (j < 4)) ? 1 : -1
                    let bump: Float = j == r ? 1 : 0
                    features.append(3 * sign + bump + noise())
                }
            }
        }
        let image = try RGBImage(width: cols * 2, height: rows * 2, pixels: [UInt8](repeating: 128, count: cols * rows * 12))
        let item = PatchFeatures(image: image, features: features, rows: rows, cols: cols, dim: 8)
        let map = try PatchPCAMap([item], threshold: .auto)
        for r in 0..<rows {
            for c in 0..<cols {
                XCTAssertEqual(map.foreground[0][r * cols + c], (2..<6).contains(r) && (2..<6).contains(c), "patch \(r),\(c)")
            }
        }
        for (i, fg) in map.foreground[0].enumerated() where !fg {
            XCTAssertTrue(map.colors[0][i] == (0, 0, 0))
        }
        let picture = try FeaturePictures.pca([item], map: map, patch: 2, title: "test")
        let path = directory + "/pca.png"
        try PNGEncoder.write(picture, to: path)
        XCTAssertEqual(try ImageDecoder.decode(path: path), picture)
    }

    func testAttentionPictureIsWritten() throws {
        let model = try EmbedFixtures.model()
        let image = try ImageDecoder.decode(path: EmbedFixtures.photos[0])
        let size = FeaturePictures.inputSize(width: image.width, height: image.height, shorterSide: 112, patch: 14)
        XCTAssertEqual(size, ImageSize(height: 112, width: 126)) // 320x272 -> 131.8x112 -> 126x112
        let preprocess = Preprocess(resizing: .exact(size), crop: nil)
        let attention = try model.lastBlockAttention(try preprocess.batch(images: [image]))
        let picture = try FeaturePictures.attention(image: try preprocess.geometry(image), heads: attention.clsToPatches(image: 0),
                                                    rows: attention.patchRows, cols: attention.patchCols, patch: 14, title: "test")
        let path = directory + "/attention.png"
        try PNGEncoder.write(picture, to: path)
        XCTAssertEqual(try ImageDecoder.decode(path: path), picture)
        XCTAssertGreaterThan(picture.width, 3 * 126)
    }
}
