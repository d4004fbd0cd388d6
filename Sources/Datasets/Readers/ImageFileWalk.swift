import Foundation
import TensorStore

/// The one walk over a folder of images, shared by `ImageFolder` (evaluation, embed --dir) and
/// `ImageList` (training data): directories in sorted path order, file names sorted within each
/// (Python's code-point order, as torchvision sorts). Symbolic links to folders are followed, as
/// `os.walk(followlinks=True)` does, but each real folder (device + inode) is entered once: links
/// back to a folder already seen are cut, so a folder with links to itself is walked once, not
/// once per path through the links.
public enum ImageFileWalk {
    /// Files under `directory` whose name ends in one of `extensions` (any case).
    /// `skipHidden` drops files and folders whose name starts with ".".
    public static func files(under directory: String, extensions: [String], skipHidden: Bool) -> [String] {
        var directories: [String] = []
        var visited: Set<FileIdentity> = []
        // Breadth first over sorted names, so which path names a folder reached twice is
        // deterministic: the shortest, then the first in sorted order.
        var pending = [directory], next = 0
        while next < pending.count {
            let dir = pending[next]
            next += 1
            guard let id = FileIdentity(path: dir), visited.insert(id).inserted else { continue }
            directories.append(dir)
            for name in entries(dir).sorted(by: ImageFolder.pythonOrder)
            where !(skipHidden && name.hasPrefix(".")) && isDirectory(dir + "/" + name) {
                pending.append(dir + "/" + name)
            }
        }
        directories.sort(by: ImageFolder.pythonOrder)
        var files: [String] = []
        for dir in directories {
            let images = entries(dir).filter { name in
                let lower = name.lowercased()
                return !(skipHidden && name.hasPrefix(".")) && extensions.contains { lower.hasSuffix($0) }
                    && !isDirectory(dir + "/" + name)
            }
            files += images.sorted(by: ImageFolder.pythonOrder).map { dir + "/" + $0 }
        }
        return files
    }

    static func entries(_ dir: String) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
    }

    static func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }
}
