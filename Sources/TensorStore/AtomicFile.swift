#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if canImport(Glibc)
private let systemWrite = Glibc.write
#else
private let systemWrite = Darwin.write
#endif

#if os(Linux)
/// sync_file_range(2): Glibc's module does not export it (it is behind _GNU_SOURCE).
private typealias SyncFileRange = @convention(c) (Int32, Int64, Int64, UInt32) -> Int32
private let syncFileRange: SyncFileRange? = {
    guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "sync_file_range") else { return nil }
    return unsafeBitCast(symbol, to: SyncFileRange.self)
}()
private let syncFileRangeWrite: UInt32 = 2 // SYNC_FILE_RANGE_WRITE
#endif

/// Writes a file atomically: bytes go to a temporary file beside the target, are fsync'd, and the
/// temporary is renamed over the target (then the directory is fsync'd). If anything fails, the
/// temporary is removed and an existing target is left untouched.
///
/// The target is checked first (`OutputPath.checkFile`: its folder exists, it is not a
/// directory). The temporary is named `.<name>.tmp-<pid>-XXXXXX`: a process killed mid-write
/// (kill -9, power loss) cannot remove its own, so the next writer of the same target removes
/// every such file whose process is gone (see `sweepStaleTemporaries`).
public final class AtomicFileWriter {
    public let path: String
    private let tempPath: String
    private var fd: Int32
    private var finished = false
    public private(set) var bytesWritten: Int = 0
    /// Bytes handed to writeback already (see `startWriteback`).
    private var writebackStarted = 0

    /// How much written data may wait before its writeback is started. The final fsync then has
    /// only the tail left, instead of the whole file: a checkpoint's bytes reach the disk while
    /// later tensors are still being copied.
    public static let writebackChunk = 8 << 20

    public init(path: String) throws {
        self.path = path
        try OutputPath.checkFile(path)
        let dir = AtomicFileWriter.directory(of: path)
        let base = path.split(separator: "/").last.map(String.init) ?? path
        AtomicFileWriter.sweepStaleTemporaries(in: dir, base: base)
        var template = Array("\(dir)/\(AtomicFileWriter.temporaryPrefix(base))\(getpid())-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            throw TensorStoreError.io(path: path, message: "cannot write in folder \(dir): \(String(cString: strerror(errno)))")
        }
        self.fd = fd
        self.tempPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        fchmod(fd, 0o644)
    }

    deinit {
        if !finished { abandon() }
    }

    static func directory(of path: String) -> String { OutputPath.folder(of: path) }

    /// `.<name>.tmp-`: what every temporary for target `<name>` starts with; the writer's pid follows.
    public static func temporaryPrefix(_ base: String) -> String { ".\(base).tmp-" }

    /// Removes temporaries of this target (`.<base>.tmp-<pid>-XXXXXX`, DinoKit's own naming only)
    /// whose writing process no longer exists; with `base` nil, those of every target in `dir`
    /// (a folder DinoKit owns, such as a run folder being resumed). A live writer's file (another
    /// process writing the same target right now) is left alone. A pid reused by an unrelated
    /// process keeps a stale file until that process ends: harmless, and the only mistake the
    /// check can make.
    public static func sweepStaleTemporaries(in dir: String, base: String? = nil) {
        guard let d = opendir(dir) else { return }
        defer { closedir(d) }
        var stale: [String] = []
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            let tail: String
            if let base {
                guard name.hasPrefix(temporaryPrefix(base)) else { continue }
                tail = String(name.dropFirst(temporaryPrefix(base).count))
            } else {
                guard name.hasPrefix("."), let t = afterLastTemporaryMarker(name) else { continue }
                tail = t
            }
            let rest = tail.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            guard rest.count == 2, rest[1].count == 6, let pid = Int32(rest[0]), pid > 0 else { continue }
            if pid != getpid(), kill(pid, 0) != 0, errno == ESRCH { stale.append(name) }
        }
        for name in stale { unlink(dir + "/" + name) }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard fd >= 0, !finished else {
            throw TensorStoreError.io(path: path, message: "write after the file was synced or abandoned")
        }
        var done = 0
        while done < bytes.count {
            let n = systemWrite(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                let message = String(cString: strerror(errno))
                abandon()
                throw TensorStoreError.io(path: path, message: "write failed: \(message)")
            }
            done += n
        }
        bytesWritten += bytes.count
        startWriteback()
    }

    /// Starts (does not wait for) writeback of what was written since the last call, once that is
    /// `writebackChunk` or more. Durability still comes from `commit`'s fsync; this only moves the
    /// disk's work earlier. Where sync_file_range is missing, fsync does all of it as before.
    private func startWriteback(force: Bool = false) {
        #if os(Linux)
        let pending = bytesWritten - writebackStarted
        guard pending >= AtomicFileWriter.writebackChunk || (force && pending > 0), let syncFileRange else { return }
        _ = syncFileRange(fd, Int64(writebackStarted), Int64(pending), syncFileRangeWrite)
        writebackStarted = bytesWritten
        #endif
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    public func write(_ string: String) throws {
        try write(Array(string.utf8))
    }

    /// A tensor's elements in C order. A contiguous tensor that is a view of a mapped file is
    /// copied file-to-file inside the kernel (sendfile): no pages of the source are touched, so
    /// converting a checkpoint does not grow the process by the checkpoint's size. Any other
    /// tensor goes through memory (a deferred one computed just for this), and the source pages
    /// it read are dropped afterwards (`Tensor.dropResidentPages`), for the same reason.
    public func write(_ tensor: Tensor) throws {
        defer { tensor.dropResidentPages() }
        #if os(Linux)
        if tensor.isContiguous, tensor.byteCount > 0, case let .mapped(file) = tensor.storage.backing {
            var offset = tensor.storage.fileOffset + tensor.offset * tensor.dtype.size
            var remaining = tensor.byteCount
            while remaining > 0 {
                // At most a writeback chunk per call, so writeback of a large tensor starts early.
                let n = sendfile(fd, file.descriptor, &offset, Swift.min(remaining, AtomicFileWriter.writebackChunk))
                if n > 0 {
                    remaining -= n
                    bytesWritten += n
                    startWriteback()
                    continue
                }
                if n < 0 && errno == EINTR { continue }
                break // unsupported here (or EOF): copy the rest through memory
            }
            let done = tensor.byteCount - remaining
            if remaining == 0 { return }
            let start = tensor.offset * tensor.dtype.size + done
            try write(UnsafeRawBufferPointer(rebasing: tensor.storage.bytes[start..<(start + remaining)]))
            return
        }
        #endif
        try tensor.withContiguousBytes { try write($0) }
    }

    /// Zero bytes, e.g. alignment padding.
    public func writeZeros(_ count: Int) throws {
        if count > 0 { try write([UInt8](repeating: 0, count: count)) }
    }

    /// fsync and close the temporary, without replacing the target yet: a writer of several files
    /// (an HF folder's shards, index and config) makes every one durable before `commit` renames
    /// any, so a failure on the last file still leaves every target as it was. Nothing may be
    /// written afterwards.
    public func sync() throws {
        guard !finished, fd >= 0 else { return }
        startWriteback(force: true)
        if fsync(fd) != 0 {
            let message = String(cString: strerror(errno))
            abandon()
            throw TensorStoreError.io(path: path, message: "fsync failed: \(message)")
        }
        close(fd)
        fd = -1
    }

    /// fsync (unless `sync` did), rename over the target, fsync the directory.
    public func commit() throws {
        guard !finished else { return }
        try sync()
        if rename(tempPath, path) != 0 {
            let message = String(cString: strerror(errno))
            unlink(tempPath)
            finished = true
            throw TensorStoreError.io(path: path, message: "rename failed: \(message)")
        }
        finished = true
        let dfd = open(AtomicFileWriter.directory(of: path), O_RDONLY | O_DIRECTORY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    /// What follows the last ".tmp-" in `name` (the "<pid>-XXXXXX" of a temporary), if any.
    private static func afterLastTemporaryMarker(_ name: String) -> String? {
        let bytes = Array(name.utf8), marker = Array(".tmp-".utf8)
        var i = bytes.count - marker.count
        while i > 0 {
            if bytes[i..<(i + marker.count)].elementsEqual(marker) {
                return String(decoding: bytes[(i + marker.count)...], as: UTF8.self)
            }
            i -= 1
        }
        return nil
    }

    /// Drops the temporary file; the target is untouched.
    public func abandon() {
        guard !finished else { return }
        if fd >= 0 { close(fd); fd = -1 }
        unlink(tempPath)
        finished = true
    }

    /// Writes a whole file atomically from a closure that streams into the writer.
    public static func write(to path: String, _ body: (AtomicFileWriter) throws -> Void) throws {
        let w = try AtomicFileWriter(path: path)
        do {
            try body(w)
            try w.commit()
        } catch {
            w.abandon()
            throw error
        }
    }
}
