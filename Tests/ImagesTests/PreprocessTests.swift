import Images
import TensorStore
import TestSupport
import XCTest

/// File → tensor pipelines against torchvision.transforms on the same files.
final class PreprocessTests: XCTestCase {
    func testPresetsMatchTorchvision() throws {
        let manifest = try ImageManifest.load()
        var images = ByteMatch()
        var exactTensors = 0, cases = 0
        var worst: Float = 0
        for item in manifest.images {
            for preset in item.presets {
                cases += 1
                let label = "\(item.file) \(preset.name)"
                let p = preset.preprocess
                let decoded = try ImageDecoder.decode(path: imageFixture(item.file))
                let processed = try p.geometry(decoded)
                let rows = try compareRows(processed, preset.image)
                images.add(rows)
                XCTAssertEqual(crc32(processed.pixels), preset.image.crc32, "\(label): 8-bit image differs from PIL's; rows \(rows)")

                let tensor = try p.tensor(decoded)
                XCTAssertEqual(tensor.dtype, .f32)
                XCTAssertEqual(tensor.shape.dims, preset.tensorShape, label)
                let exact = tensor.withContiguousBytes { crc32($0) } == preset.tensorCrc32
                if exact { exactTensors += 1 }
                XCTAssertTrue(exact, "\(label): float32 tensor differs from torchvision's")

                // Value check on the stored rows: torchvision's tensor there is table[c][pixel].
                let (table, _) = try npyFloats(manifest.normalization[preset.normalization]!.table)
                let (stored, _) = try npyBytes(preset.image.file)
                let floats = tensor.floats()
                let (h, w) = (preset.tensorShape[1], preset.tensorShape[2])
                let bound = preset.std.map { Float(1 / 255 / $0 + 1e-6) }
                for (i, y) in stride(from: 0, to: h, by: preset.image.rowStride).enumerated() {
                    for x in 0..<w {
                        for c in 0..<3 {
                            let want = table[c * 256 + Int(stored[(i * w + x) * 3 + c])]
                            let got = floats[(c * h + y) * w + x]
                            worst = max(worst, abs(got - want))
                            XCTAssertLessThanOrEqual(abs(got - want), bound[c], "\(label) (c \(c), y \(y), x \(x))")
                        }
                    }
                }
            }
        }
        print("presets vs torchvision: \(exactTensors)/\(cases) float32 tensors bit-identical, max abs diff on stored rows \(worst); 8-bit images before ToTensor: \(images)")
        XCTAssertGreaterThanOrEqual(cases, 20)
    }

    func testEvalPresetIsDINOv2s() {
        let p = Preprocess.eval
        XCTAssertEqual(p.resizing, .shorterSide(256))
        XCTAssertEqual(p.crop, ImageSize(height: 224, width: 224))
        XCTAssertEqual(p.interpolation, .bicubic)
        XCTAssertEqual(p.mean, [0.485, 0.456, 0.406])
        XCTAssertEqual(p.std, [0.229, 0.224, 0.225])
        XCTAssertEqual(p.fixedOutputSize, ImageSize(height: 224, width: 224))
        XCTAssertEqual(Preprocess.resize(224).fixedOutputSize, ImageSize(height: 224, width: 224))
        XCTAssertNil(Preprocess(resizing: .shorterSide(256), crop: nil).fixedOutputSize)
    }

    /// A batch keeps input order, skips unreadable files with typed errors, and equals the
    /// per-image tensors stacked — with one thread or several.
    func testBatchStacksSuccessesInOrderAndReportsFailures() throws {
        let names = ["china_257x171_q60_422.jpg", "bad_truncated.jpg", "flower_20x30_tiny.png",
                     "bad_not_an_image.txt", "china_160x120_cmyk.jpg", "/nonexistent.jpg"]
        let paths = names.map { $0.hasPrefix("/") ? $0 : imageFixture($0) }
        let preset = Preprocess.resize(32, mean: [0.4914, 0.4822, 0.4465], std: [0.2470, 0.2435, 0.2616])
        for threads in [1, 3] {
            let batch = try Preprocess.batch(paths: paths, preset: preset, threads: threads)
            XCTAssertEqual(batch.paths, [paths[0], paths[2], paths[4]])
            XCTAssertEqual(batch.failures.map(\.path), [paths[1], paths[3], paths[5]])
            XCTAssertEqual(batch.failures.map { $0.error.file }, [paths[1], paths[3], paths[5]])
            XCTAssertEqual(batch.tensor.shape.dims, [3, 3, 32, 32])
            let all = batch.tensor.floats()
            for (i, path) in batch.paths.enumerated() {
                let single = try preset.tensor(path: path).floats()
                XCTAssertEqual(Array(all[(i * 3 * 32 * 32)..<((i + 1) * 3 * 32 * 32)]).map(\.bitPattern), single.map(\.bitPattern), path)
            }
        }
        let decoded = try paths.enumerated().filter { [0, 2, 4].contains($0.offset) }.map { try ImageDecoder.decode(path: $0.element) }
        XCTAssertEqual(try preset.batch(images: decoded).floats(), try preset.batch(paths: paths).tensor.floats())
    }

    func testBatchNeedsAFixedOutputSize() {
        XCTAssertThrowsError(try Preprocess(resizing: .shorterSide(64), crop: nil).batch(paths: [])) { error in
            guard case .invalidArgument? = error as? ImageError else { return XCTFail("\(error)") }
        }
        let empty = try? Preprocess.eval.batch(paths: [])
        XCTAssertEqual(empty?.tensor.shape.dims, [0, 3, 224, 224])
    }
}
