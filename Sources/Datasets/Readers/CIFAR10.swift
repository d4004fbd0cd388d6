import Foundation
import Formats
import Images
import TensorStore

/// The CIFAR-10 dataset as distributed (https://www.cs.toronto.edu/~kriz/cifar.html), in either
/// layout:
/// - binary (`cifar-10-batches-bin/`): `data_batch_1.bin` … `data_batch_5.bin`, `test_batch.bin`,
///   each a run of 3073-byte records (1 label byte, then 1024 R, 1024 G, 1024 B bytes of a 32×32
///   image, rows top to bottom), and `batches.meta.txt` (one class name per line);
/// - python (`cifar-10-batches-py/`): `data_batch_1` … `data_batch_5`, `test_batch`, pickled
///   dicts with `data` (a uint8 NumPy array, N × 3072, same planar order) and `labels` (a list),
///   and `batches.meta` (a dict with `label_names`). Read with DinoKit's safe unpickler, NumPy's
///   array globals allowed for this reader only (`NumpyPickle`).
///
/// Batches may hold any number of records (the real ones hold 10,000); train is the five training
/// batches in order, as torchvision's `CIFAR10(train=True)` concatenates them.
public struct CIFAR10: Sendable {
    public enum Layout: String, Sendable, Codable { case binary, python }

    public static let recordBytes = 3072
    public static let imageSide = 32
    public static let trainFiles = (1...5).map { "data_batch_\($0)" }
    public static let testFile = "test_batch"
    /// The dataset's own statistics, used by the CIFAR probe's default preprocessing.
    public static let mean: [Double] = [0.4914, 0.4822, 0.4465]
    public static let std: [Double] = [0.2470, 0.2435, 0.2616]

    public let directory: String
    public let layout: Layout
    public let classes: [String]
    public let train: CIFARImages
    public let test: CIFARImages

    /// Reads the dataset in `directory`: the batches folder itself, or a folder holding
    /// `cifar-10-batches-bin/` or `cifar-10-batches-py/` (torchvision's root).
    public init(directory: String) throws {
        let dir = try CIFAR10.batchesDirectory(directory)
        let layout: Layout = FileManager.default.fileExists(atPath: dir + "/data_batch_1.bin") ? .binary : .python
        self.directory = dir
        self.layout = layout
        let names: [String]
        let trainParts, testParts: [(labels: [Int], pixels: [UInt8])]
        switch layout {
        case .binary:
            names = try CIFAR10.readMetaText(dir + "/batches.meta.txt")
            trainParts = try CIFAR10.trainFiles.map { try CIFAR10.readBinary(dir + "/\($0).bin", classes: names.count) }
            testParts = [try CIFAR10.readBinary(dir + "/\(CIFAR10.testFile).bin", classes: names.count)]
        case .python:
            names = try CIFAR10.readMetaPickle(dir + "/batches.meta")
            trainParts = try CIFAR10.trainFiles.map { try CIFAR10.readPython(dir + "/\($0)", classes: names.count) }
            testParts = [try CIFAR10.readPython(dir + "/\(CIFAR10.testFile)", classes: names.count)]
        }
        classes = names
        train = CIFAR10.concatenate(trainParts, classes: names, source: "\(dir) train")
        test = CIFAR10.concatenate(testParts, classes: names, source: "\(dir) test")
    }

    /// The folder holding the batches, or an error that says what was looked for.
    static func batchesDirectory(_ directory: String) throws -> String {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw EvaluationError.missingFile(path: directory, expected: "a CIFAR-10 folder (cifar-10-batches-bin/ or cifar-10-batches-py/)")
        }
        let dir = directory.hasSuffix("/") && directory.count > 1 ? String(directory.dropLast()) : directory
        for candidate in [dir, dir + "/cifar-10-batches-bin", dir + "/cifar-10-batches-py"] {
            if fm.fileExists(atPath: candidate + "/data_batch_1.bin") || fm.fileExists(atPath: candidate + "/data_batch_1") {
                return candidate
            }
        }
        throw EvaluationError.missingFile(path: dir + "/data_batch_1.bin",
                                          expected: "no CIFAR-10 batches here: expected data_batch_1.bin … test_batch.bin (binary version) or data_batch_1 … test_batch (python version)")
    }

    // MARK: - Binary layout

    /// Records of one `.bin` batch: labels and planar pixels.
    static func readBinary(_ path: String, classes: Int) throws -> (labels: [Int], pixels: [UInt8]) {
        let data = try readFile(path, expected: "CIFAR-10 binary batch")
        let record = recordBytes + 1
        guard !data.isEmpty, data.count % record == 0 else {
            throw EvaluationError.badDataset(path: path, detail: "\(data.count) bytes is not a whole number of 3073-byte records (1 label byte + 3072 pixel bytes); is this CIFAR-10's binary version (CIFAR-100 records are 3074 bytes)?")
        }
        let n = data.count / record
        var labels = [Int](repeating: 0, count: n)
        var pixels = [UInt8](repeating: 0, count: n * recordBytes)
        try data.withUnsafeBytes { src in
            try pixels.withUnsafeMutableBytes { dst in
                for i in 0..<n {
                    let label = Int(src[i * record])
                    guard label < classes else {
                        throw EvaluationError.badDataset(path: path, detail: "record \(i) (byte \(i * record)) has label \(label), but batches.meta.txt names \(classes) classes")
                    }
                    labels[i] = label
                    dst.baseAddress!.advanced(by: i * recordBytes)
                        .copyMemory(from: src.baseAddress!.advanced(by: i * record + 1), byteCount: recordBytes)
                }
            }
        }
        return (labels, pixels)
    }

    /// `batches.meta.txt`: one class name per line; blank lines (the file ends with some) ignored.
    static func readMetaText(_ path: String) throws -> [String] {
        let data = try readFile(path, expected: "CIFAR-10 class names, one per line")
        let names = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !names.isEmpty, names.count <= 256 else {
            throw EvaluationError.badDataset(path: path, detail: "expected 1…256 class names, one per line; found \(names.count)")
        }
        return names
    }

    // MARK: - Python layout

    /// One pickled batch: `{'data': uint8 array (N, 3072), 'labels': [int]}`.
    static func readPython(_ path: String, classes: Int) throws -> (labels: [Int], pixels: [UInt8]) {
        let dict = try unpickle(path, expected: "CIFAR-10 python batch")
        guard let dataValue = dict.entry("data") else {
            throw EvaluationError.badDataset(path: path, detail: "the pickled dict has no 'data' entry")
        }
        let array: NumpyPickle.Array
        do { array = try NumpyPickle.array(dataValue) } catch {
            throw EvaluationError.badDataset(path: path, detail: "'data': \(error)")
        }
        guard array.dtype == .u8, array.shape.count == 2, array.shape[1] == recordBytes else {
            throw EvaluationError.badDataset(path: path, detail: "'data' is \(array.dtype) \(array.shape); expected uint8 (N, 3072)")
        }
        guard let labelItems = (dict.entry("labels") ?? dict.entry("fine_labels"))?.sequenceItems else {
            throw EvaluationError.badDataset(path: path, detail: "the pickled dict has no 'labels' list")
        }
        guard labelItems.count == array.shape[0] else {
            throw EvaluationError.badDataset(path: path, detail: "\(labelItems.count) labels for \(array.shape[0]) images")
        }
        let labels = try labelItems.enumerated().map { i, v -> Int in
            guard case let .int(l) = v, l >= 0, l < classes else {
                throw EvaluationError.badDataset(path: path, detail: "label \(i) is \(v), not a class index below \(classes)")
            }
            return l
        }
        return (labels, array.bytes)
    }

    /// `batches.meta`: a dict with `label_names`.
    static func readMetaPickle(_ path: String) throws -> [String] {
        let dict = try unpickle(path, expected: "CIFAR-10 class names (pickled dict with 'label_names')")
        guard let items = dict.entry("label_names")?.sequenceItems, !items.isEmpty, items.count <= 256 else {
            throw EvaluationError.badDataset(path: path, detail: "no 'label_names' list of 1…256 names")
        }
        return try items.map {
            guard let s = NumpyPickle.text($0) else {
                throw EvaluationError.badDataset(path: path, detail: "a label name is \($0.kindName), not text")
            }
            return s
        }
    }

    static func unpickle(_ path: String, expected: String) throws -> PickleValue {
        let bytes = [UInt8](try readFile(path, expected: expected))
        let value: PickleValue
        do { value = try NumpyPickle.unpickle(bytes) } catch {
            throw EvaluationError.badDataset(path: path, detail: "not a readable pickle: \(error)")
        }
        guard case .dict = value else {
            throw EvaluationError.badDataset(path: path, detail: "the pickle holds \(value.kindName), expected a dict")
        }
        return value
    }

    // MARK: - Shared

    static func readFile(_ path: String, expected: String) throws -> Data {
        guard FileManager.default.fileExists(atPath: path) else {
            throw EvaluationError.missingFile(path: path, expected: expected)
        }
        do { return Data(try RegularFile.read(path)) } catch {
            throw EvaluationError.io(path: path, detail: "cannot read: \(error)")
        }
    }

    static func concatenate(_ parts: [(labels: [Int], pixels: [UInt8])], classes: [String], source: String) -> CIFARImages {
        var labels: [Int] = [], pixels: [UInt8] = []
        labels.reserveCapacity(parts.reduce(0) { $0 + $1.labels.count })
        pixels.reserveCapacity(parts.reduce(0) { $0 + $1.pixels.count })
        for p in parts {
            labels += p.labels
            pixels += p.pixels
        }
        return CIFARImages(classes: classes, labels: labels, planarPixels: pixels, source: source)
    }
}

/// One CIFAR split in memory: 32×32 images stored as the files store them (planar R, G, B).
public struct CIFARImages: LabeledImages {
    public let classes: [String]
    public let labels: [Int]
    /// N × 3072 bytes: per image 1024 R, 1024 G, 1024 B, rows top to bottom.
    public let planarPixels: [UInt8]
    public let source: String

    public init(classes: [String], labels: [Int], planarPixels: [UInt8], source: String) {
        self.classes = classes
        self.labels = labels
        self.planarPixels = planarPixels
        self.source = source
    }

    /// The image as PIL sees CIFAR's arrays (`Image.fromarray(data.reshape(3, 32, 32).transpose(1, 2, 0))`).
    public func image(at index: Int) throws -> RGBImage {
        guard index >= 0, index < labels.count else {
            throw EvaluationError.invalidArgument(what: "image index", detail: "\(index) is outside 0..<\(labels.count)")
        }
        let plane = CIFAR10.imageSide * CIFAR10.imageSide
        var rgb = [UInt8](repeating: 0, count: 3 * plane)
        planarPixels.withUnsafeBufferPointer { src in
            let base = index * CIFAR10.recordBytes
            for p in 0..<plane {
                rgb[3 * p] = src[base + p]
                rgb[3 * p + 1] = src[base + plane + p]
                rgb[3 * p + 2] = src[base + 2 * plane + p]
            }
        }
        return try RGBImage(width: CIFAR10.imageSide, height: CIFAR10.imageSide, pixels: rgb)
    }

    /// SHA-256 of the class names, labels and pixels.
    public func fingerprint() throws -> String {
        var h = SHA256()
        h.update(Array(classes.joined(separator: "\n").utf8))
        h.update(labels.map { UInt8(truncatingIfNeeded: $0) })
        h.update(planarPixels)
        return h.hexDigest()
    }
}
