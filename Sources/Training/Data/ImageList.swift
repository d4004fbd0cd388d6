import Datasets
import Foundation
import Images
import TensorStore

/// The training images of a data folder: either an ImageFolder tree (one subfolder per class;
/// the labels are ignored for SSL) or a flat folder, walked recursively either way. JPEG and PNG
/// files (by extension, any case) are kept in a deterministic order: directories in sorted path
/// order, file names sorted within each (Python's code-point order, as torchvision sorts).
/// Hidden files and folders (names starting with ".") are skipped.
///
/// At scan time each file's first bytes are checked: empty files and files that are not JPEG or
/// PNG by their magic bytes are dropped and reported in `problems` (path and reason). Damage that
/// shows only when decoding is handled at batch time by `MultiCropSource`, which replaces the
/// image with another one drawn deterministically and records the file in its own report.
public struct ImageList: Sendable, Equatable {
    public struct Problem: Sendable, Equatable, Codable {
        public var path: String
        public var reason: String

        public init(path: String, reason: String) {
            self.path = path
            self.reason = reason
        }
    }

    public static let extensions = [".jpg", ".jpeg", ".png"]

    public let root: String
    public let paths: [String]
    /// Files skipped at scan time.
    public let problems: [Problem]

    /// A list of explicit files (no validation; for callers that already have one).
    public init(root: String, paths: [String], problems: [Problem] = []) {
        self.root = root
        self.paths = paths
        self.problems = problems
    }

    /// Scans `folder` as described on the type.
    public init(scanning folder: String) throws {
        let base = folder.count > 1 && folder.hasSuffix("/") ? String(folder.dropLast()) : folder
        guard ImageFolder.isDirectory(base) else {
            throw SSLDataError.folder(path: base, detail: "not a folder; --data takes a folder of JPEG/PNG images (flat, or one subfolder per class)")
        }
        var paths: [String] = [], problems: [Problem] = []
        for path in ImageFileWalk.files(under: base, extensions: ImageList.extensions, skipHidden: true) {
            if let reason = ImageList.headerProblem(path) {
                problems.append(Problem(path: path, reason: reason))
            } else {
                paths.append(path)
            }
        }
        guard !paths.isEmpty else {
            let detail = problems.isEmpty
                ? "no .jpg, .jpeg or .png files found (searched recursively)"
                : "all \(problems.count) image files were unusable, e.g. \(problems[0].path): \(problems[0].reason)"
            throw SSLDataError.noImages(path: base, detail: detail)
        }
        self.init(root: base, paths: paths, problems: problems)
    }

    public var count: Int { paths.count }

    /// Why the file cannot be an image DinoKit decodes, judged from its first bytes; nil if it may be.
    static func headerProblem(_ path: String) -> String? {
        let head: [UInt8]
        do { head = try RegularFile.head(path, count: 8) } catch let TensorStoreError.io(_, message) {
            return "cannot read: \(message)"
        } catch { return "cannot read: \(error)" }
        if head.isEmpty { return "empty file" }
        let format = head.withUnsafeBytes { ImageFormat.sniff($0) }
        if format == nil {
            return "not a JPEG or PNG file (starts with \(head.map { String(format: "%02x", $0) }.joined(separator: " ")))"
        }
        return nil
    }
}
