import Datasets
import Evaluation
import Foundation
import TestSupport
import XCTest

/// The CIFAR-10 readers on the fixture written in both layouts (Scripts/fixtures/probe.py):
/// labels and class names as torchvision reads them, pixels as torchvision's arrays hold them,
/// both layouts identical; clear errors for missing files and wrong sizes.
final class CIFAR10ReaderTests: XCTestCase {
    let binary = fixturePath("cifar/cifar-10-batches-bin")
    let python = fixturePath("cifar/cifar-10-batches-py")

    func testBothLayoutsReadWhatTorchvisionReads() throws {
        let reference = try CIFARReference.load()
        for dir in [binary, python] {
            let cifar = try CIFAR10(directory: dir)
            XCTAssertEqual(cifar.layout, dir == binary ? .binary : .python)
            XCTAssertEqual(cifar.classes, reference.classes)
            XCTAssertEqual(cifar.train.labels, reference.train_labels)
            XCTAssertEqual(cifar.test.labels, reference.test_labels)
            for (split, checks) in [(cifar.train, reference.train_pixels), (cifar.test, reference.test_pixels)] {
                for check in checks {
                    let image = try split.image(at: check.index)
                    XCTAssertEqual(image.width, 32)
                    XCTAssertEqual((0..<3).map { Int(image[x: check.column, y: check.row, c: $0]) }, check.rgb,
                                   "\(dir) image \(check.index) at (\(check.row), \(check.column))")
                }
            }
        }
    }

    func testLayoutsHoldTheSameImages() throws {
        let a = try CIFAR10(directory: binary), b = try CIFAR10(directory: python)
        XCTAssertEqual(a.train.planarPixels, b.train.planarPixels)
        XCTAssertEqual(a.test.planarPixels, b.test.planarPixels)
        XCTAssertEqual(a.train.planarPixels.count, 100 * 3072)
        XCTAssertEqual(try a.train.fingerprint(), try b.train.fingerprint())
        XCTAssertNotEqual(try a.train.fingerprint(), try a.test.fingerprint())
    }

    func testTorchvisionRootFindsTheBatchesFolder() throws {
        // `--cifar10 root/` as torchvision's root: the binary folder is preferred when both exist.
        let cifar = try CIFAR10(directory: fixturePath("cifar"))
        XCTAssertEqual(cifar.layout, .binary)
        XCTAssertEqual(cifar.train.count, 100)
        XCTAssertEqual(cifar.test.count, 50)
    }

    func testMissingDirectoryAndFiles() throws {
        XCTAssertThrowsError(try CIFAR10(directory: "/nonexistent/cifar")) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/cifar"), "\(error)")
        }
        let empty = makeTemporaryDirectory("cifar-empty")
        defer { try? FileManager.default.removeItem(atPath: empty) }
        XCTAssertThrowsError(try CIFAR10(directory: empty)) { error in
            XCTAssertTrue("\(error)".contains("data_batch_1.bin"), "\(error)")
        }
        for (layout, missing) in [(binary, "data_batch_3.bin"), (binary, "test_batch.bin"), (binary, "batches.meta.txt"),
                                  (python, "data_batch_5"), (python, "batches.meta")] {
            let dir = try copy(layout)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try FileManager.default.removeItem(atPath: dir + "/" + missing)
            XCTAssertThrowsError(try CIFAR10(directory: dir)) { error in
                guard case let EvaluationError.missingFile(path, _) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(path, dir + "/" + missing)
            }
        }
    }

    func testWrongSizesAndLabels() throws {
        let dir = try copy(binary)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let batch = dir + "/data_batch_2.bin"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: batch))
        try bytes.dropLast().write(to: URL(fileURLWithPath: batch))
        XCTAssertThrowsError(try CIFAR10(directory: dir)) { error in
            XCTAssertTrue("\(error)".contains("data_batch_2.bin") && "\(error)".contains("3073"), "\(error)")
        }
        try Data().write(to: URL(fileURLWithPath: batch))
        XCTAssertThrowsError(try CIFAR10(directory: dir))
        bytes[3073] = 10 // the second record's label: batches.meta.txt names 10 classes
        try bytes.write(to: URL(fileURLWithPath: batch))
        XCTAssertThrowsError(try CIFAR10(directory: dir)) { error in
            XCTAssertTrue("\(error)".contains("record 1") && "\(error)".contains("label 10"), "\(error)")
        }
    }

    func testBrokenPythonBatches() throws {
        let dir = try copy(python)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let batch = dir + "/data_batch_1"
        let original = try Data(contentsOf: URL(fileURLWithPath: batch))
        try original.prefix(original.count / 2).write(to: URL(fileURLWithPath: batch))
        XCTAssertThrowsError(try CIFAR10(directory: dir)) { error in
            XCTAssertTrue("\(error)".contains("data_batch_1") && "\(error)".contains("pickle"), "\(error)")
        }
        // A pickled dict whose array is 2 x 3 uint8, not N x 3072.
        try FileManager.default.removeItem(atPath: batch)
        try FileManager.default.copyItem(atPath: fixturePath("cifar/pickles/u8_python2.pkl"), toPath: batch)
        XCTAssertThrowsError(try CIFAR10(directory: dir)) { error in
            XCTAssertTrue("\(error)".contains("(N, 3072)"), "\(error)")
        }
    }

    private func copy(_ source: String) throws -> String {
        let dir = makeTemporaryDirectory("cifar-copy") + "/batches"
        try FileManager.default.copyItem(atPath: source, toPath: dir)
        return dir
    }
}
