import Foundation
import Images

/// torchvision's `ImageFolder`: one subfolder per class under `root`, classes named by their
/// folders in sorted order (label = index), images found recursively in each class folder.
/// The order is torchvision's (`find_classes` + `make_dataset`): class folders sorted by name,
/// then the class folder's directories walked in sorted path order (`sorted(os.walk(...))`),
/// file names sorted within each. Names sort as Python sorts `str` (by Unicode code point).
/// Files are kept when their extension is one of torchvision's `IMG_EXTENSIONS` (any case), so
/// indices match torchvision's; DinoKit decodes JPEG and PNG, and any other kind fails at
/// extraction with an error naming the file.
public struct ImageFolder: LabeledImages {
    public static let imageExtensions = [".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"]

    public let root: String
    public let classes: [String]
    public let labels: [Int]
    /// Absolute or root-relative paths as found (root + "/" + relative path), in dataset order.
    public let paths: [String]

    public var source: String { root }

    public init(root: String) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else {
            throw EvaluationError.missingFile(path: root, expected: "an ImageFolder tree: one subfolder of images per class")
        }
        let base = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
        let entries: [String]
        do { entries = try fm.contentsOfDirectory(atPath: base) } catch {
            throw EvaluationError.io(path: base, detail: "cannot list: \(error.localizedDescription)")
        }
        let classes = entries.filter { ImageFolder.isDirectory(base + "/" + $0) }.sorted(by: ImageFolder.pythonOrder)
        guard !classes.isEmpty else {
            throw EvaluationError.badDataset(path: base, detail: "no class folders: an ImageFolder holds one subfolder of images per class")
        }
        var labels: [Int] = [], paths: [String] = []
        for (label, name) in classes.enumerated() {
            let files = try ImageFolder.walk(base + "/" + name)
            guard !files.isEmpty else {
                throw EvaluationError.badDataset(path: base + "/" + name, detail: "class folder '\(name)' holds no image files (extensions \(ImageFolder.imageExtensions.joined(separator: ", ")))")
            }
            paths += files
            labels += [Int](repeating: label, count: files.count)
        }
        self.root = base
        self.classes = classes
        self.labels = labels
        self.paths = paths
    }

    public func image(at index: Int) throws -> RGBImage {
        guard index >= 0, index < paths.count else {
            throw EvaluationError.invalidArgument(what: "image index", detail: "\(index) is outside 0..<\(paths.count)")
        }
        return try ImageDecoder.decode(path: paths[index])
    }

    /// SHA-256 over every file's path, size and modification time (not the pixels: hashing a
    /// large tree would cost more than it saves; an edited file changes its size or date).
    public func fingerprint() throws -> String {
        var h = SHA256()
        h.update(Array(classes.joined(separator: "\n").utf8))
        for (path, label) in zip(paths, labels) {
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            let size = (attributes?[.size] as? NSNumber)?.int64Value ?? -1
            let date = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            h.update(Array("\(label)\t\(path)\t\(size)\t\(date)\n".utf8))
        }
        return h.hexDigest()
    }

    /// Image files under `directory` in torchvision's order (see `ImageFileWalk`).
    static func walk(_ directory: String) throws -> [String] {
        ImageFileWalk.files(under: directory, extensions: imageExtensions, skipHidden: false)
    }

    public static func isDirectory(_ path: String) -> Bool { ImageFileWalk.isDirectory(path) }

    /// Python's `str` ordering: lexicographic by Unicode code point (Swift's `<` on String
    /// compares canonical equivalents and is not the same for every input).
    public static func pythonOrder(_ a: String, _ b: String) -> Bool {
        a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars) { $0.value < $1.value }
    }
}
