#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if canImport(Glibc)
private let systemRead = Glibc.read
#else
private let systemRead = Darwin.read
#endif

/// The one way DinoKit opens a file it reads (checkpoints, ONNX external data, images, goldens,
/// manifests, lists). `open(2)` on a FIFO blocks until a writer appears, and on a device it may
/// do anything, so the file is opened with O_NONBLOCK (which never blocks on a FIFO) and refused
/// unless fstat says it is a regular file; only then is O_NONBLOCK cleared for ordinary reads.
public enum RegularFile {
    /// An open descriptor for reading `path`, which must be a regular file (symbolic links are
    /// followed). The caller closes it.
    public static func openForReading(_ path: String) throws -> Int32 {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw TensorStoreError.io(path: path, message: String(cString: strerror(errno))) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw TensorStoreError.io(path: path, message: message)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw TensorStoreError.io(path: path, message: "not a regular file (\(kind(mode: st.st_mode)))")
        }
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
        return fd
    }

    /// The whole file, read through `openForReading`; at most `limit` bytes (a longer file is an
    /// error naming the limit, so a stray huge file is not read into memory).
    public static func read(_ path: String, limit: Int = 1 << 30) throws -> [UInt8] {
        let fd = try openForReading(path)
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw TensorStoreError.io(path: path, message: "read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { return out }
            guard out.count + n <= limit else {
                throw TensorStoreError.io(path: path, message: "larger than the \(limit)-byte limit for this kind of file")
            }
            out.append(contentsOf: chunk[0..<n])
        }
    }

    /// At most the first `count` bytes (fewer for a shorter file).
    public static func head(_ path: String, count: Int) throws -> [UInt8] {
        let fd = try openForReading(path)
        defer { close(fd) }
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = out.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress! + done, count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw TensorStoreError.io(path: path, message: "read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            done += n
        }
        return Array(out[0..<done])
    }

    static func kind(mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        default: return "not a plain file"
        }
    }
}

/// A file's identity (device and inode): the same file under two names (a symbolic or hard link)
/// has one identity. Used to refuse writing over an input and to visit each folder once.
public struct FileIdentity: Hashable, Sendable {
    public let device: UInt64
    public let inode: UInt64

    /// The identity of what `path` names (links followed); nil when it does not exist.
    public init?(path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
    }
}
