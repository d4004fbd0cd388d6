#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory mapping of a whole file. Storages that live inside the file are slices of
/// it and keep it alive; the mapping is released when the last slice goes away. `bytes` is only
/// valid while the MappedFile is alive: hold it (or use `withExtendedLifetime`) while reading.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let bytes: UnsafeRawBufferPointer
    /// The open file, kept for in-kernel copies (`AtomicFileWriter.write(_ tensor:)`).
    public let descriptor: Int32
    private let base: UnsafeMutableRawPointer?

    public init(path: String) throws {
        self.path = path
        let fd = try RegularFile.openForReading(path)
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw TensorStoreError.io(path: path, message: message)
        }
        descriptor = fd
        let length = Int(st.st_size)
        if length == 0 {
            base = nil
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let p = mmap(nil, length, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw TensorStoreError.io(path: path, message: "mmap failed: \(message)")
        }
        base = p
        bytes = UnsafeRawBufferPointer(start: p, count: length)
    }

    deinit {
        if let base { munmap(base, bytes.count) }
        close(descriptor)
    }

    public var count: Int { bytes.count }

    /// Gives back the memory of the pages holding bytes `range` of the file (rounded out to whole
    /// pages, clamped to the file). A checkpoint read one tensor at a time (a tensor converted
    /// and written, a block of a streamed model bound) then keeps only the pages of the tensor at
    /// hand instead of every page read so far, which a read-only mapping otherwise keeps in the
    /// process's resident set until it is unmapped. The mapping is private and read-only, so no
    /// page was ever changed: reading the range again faults the same bytes back in from the file
    /// (or the page cache).
    public func dropResidentPages(_ range: Range<Int>) {
        guard let base, !range.isEmpty else { return }
        let page = Int(getpagesize())
        // Whole pages: the mapping's last page extends past the file's end, so rounding up stays
        // inside it.
        let start = Swift.max(0, range.lowerBound) / page * page
        let end = (Swift.min(range.upperBound, count) + page - 1) / page * page
        guard end > start else { return }
        _ = madvise(base + start, end - start, MADV_DONTNEED)
    }
}

/// Raw bytes that tensors view. A slice of a memory-mapped file (zero copy), memory DinoKit owns
/// (64-byte aligned, as torch aligns storages), or bytes computed from other storages when read
/// (`DeferredBytes`: a dtype conversion or a concatenation of a checkpoint's tensors).
public final class Storage: @unchecked Sendable {
    public enum Backing {
        case mapped(MappedFile)
        case owned
        case deferred(DeferredBytes)
    }

    public let backing: Backing
    /// Where a mapped storage starts in its file (0 for owned and deferred storages).
    public let fileOffset: Int
    /// Mapped and owned storages' bytes (nil for deferred ones, which have none until read).
    private let directBytes: UnsafeRawBufferPointer?
    private let ownedBase: UnsafeMutableRawPointer?
    public let count: Int

    /// A view on `length` bytes of `file` starting at `offset`. The range is checked.
    public init(file: MappedFile, offset: Int, length: Int) throws {
        guard offset >= 0, length >= 0, offset <= file.count, length <= file.count - offset else {
            throw TensorStoreError.outOfBounds(
                what: "storage", detail: "bytes \(offset)..<\(offset &+ length) outside \(file.path) (\(file.count) bytes)")
        }
        backing = .mapped(file)
        fileOffset = offset
        ownedBase = nil
        directBytes = UnsafeRawBufferPointer(rebasing: file.bytes[offset..<(offset + length)])
        count = length
    }

    /// Zero-filled memory of `byteCount` bytes, 64-byte aligned.
    public init(byteCount: Int) {
        backing = .owned
        fileOffset = 0
        let p = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(byteCount, 1), alignment: 64)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: Swift.max(byteCount, 1))
        ownedBase = p
        directBytes = UnsafeRawBufferPointer(start: p, count: byteCount)
        count = byteCount
    }

    /// Bytes computed by `deferred` whenever they are read (see `DeferredBytes`).
    public init(deferred: DeferredBytes) {
        backing = .deferred(deferred)
        fileOffset = 0
        ownedBase = nil
        directBytes = nil
        count = deferred.count
    }

    /// A copy of `source`.
    public convenience init(copying source: UnsafeRawBufferPointer) {
        self.init(byteCount: source.count)
        if source.count > 0 { mutableBytes.copyMemory(from: source) }
    }

    public convenience init(copying source: [UInt8]) {
        self.init(byteCount: source.count)
        source.withUnsafeBytes { if $0.count > 0 { mutableBytes.copyMemory(from: $0) } }
    }

    deinit { ownedBase?.deallocate() }

    /// The storage's bytes, valid while the storage lives. A deferred storage computes them once
    /// here and keeps them; code that reads tensors one at a time uses `withBytes` instead, which
    /// holds a deferred storage's bytes only while its closure runs.
    public var bytes: UnsafeRawBufferPointer {
        if let directBytes { return directBytes }
        guard case let .deferred(deferred) = backing else { preconditionFailure("a storage without bytes") }
        return deferred.cachedBytes
    }

    /// `body` over bytes `range` of the storage (all of it when nil): a view for mapped and owned
    /// storages; for a deferred one, those bytes computed into memory that is freed when `body`
    /// returns (or its cache, once `bytes` has made one).
    public func withBytes<R>(_ range: Range<Int>? = nil, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let range = range ?? 0..<count
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "range outside the storage")
        if let directBytes { return try body(UnsafeRawBufferPointer(rebasing: directBytes[range])) }
        guard case let .deferred(deferred) = backing else { preconditionFailure("a storage without bytes") }
        return try deferred.withBytes(range, body)
    }

    public var isMapped: Bool {
        if case .mapped = backing { return true }
        return false
    }

    /// Writable view of an owned storage. Mapped and deferred storages are read-only; writing to
    /// one is a programming error, never a consequence of input data.
    public var mutableBytes: UnsafeMutableRawBufferPointer {
        precondition(ownedBase != nil, "mapped and deferred storages are read-only")
        return UnsafeMutableRawBufferPointer(mutating: bytes)
    }

    /// `MappedFile.dropResidentPages` over bytes `range` of this storage (all of it when nil).
    /// Owned memory is left alone; a deferred storage passes it on to the storages it reads.
    public func dropResidentPages(_ range: Range<Int>? = nil) {
        switch backing {
        case let .mapped(file):
            let range = range ?? 0..<count
            file.dropResidentPages((fileOffset + range.lowerBound)..<(fileOffset + range.upperBound))
        case .owned:
            break
        case let .deferred(deferred):
            for source in deferred.sources { source.dropResidentPages() }
        }
    }
}
