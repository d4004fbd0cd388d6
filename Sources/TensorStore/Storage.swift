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
}

/// Raw bytes that tensors view. Either a slice of a memory-mapped file (zero copy) or memory
/// DinoKit owns (64-byte aligned, as torch aligns storages).
public final class Storage: @unchecked Sendable {
    public enum Backing {
        case mapped(MappedFile)
        case owned
    }

    public let backing: Backing
    /// Where a mapped storage starts in its file (0 for owned storages).
    public let fileOffset: Int
    /// The storage's bytes. Mutable only for owned storages (see `mutableBytes`).
    public let bytes: UnsafeRawBufferPointer
    private let ownedBase: UnsafeMutableRawPointer?

    /// A view on `length` bytes of `file` starting at `offset`. The range is checked.
    public init(file: MappedFile, offset: Int, length: Int) throws {
        guard offset >= 0, length >= 0, offset <= file.count, length <= file.count - offset else {
            throw TensorStoreError.outOfBounds(
                what: "storage", detail: "bytes \(offset)..<\(offset &+ length) outside \(file.path) (\(file.count) bytes)")
        }
        backing = .mapped(file)
        fileOffset = offset
        ownedBase = nil
        bytes = UnsafeRawBufferPointer(rebasing: file.bytes[offset..<(offset + length)])
    }

    /// Zero-filled memory of `byteCount` bytes, 64-byte aligned.
    public init(byteCount: Int) {
        backing = .owned
        fileOffset = 0
        let p = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(byteCount, 1), alignment: 64)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: Swift.max(byteCount, 1))
        ownedBase = p
        bytes = UnsafeRawBufferPointer(start: p, count: byteCount)
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

    public var count: Int { bytes.count }

    public var isMapped: Bool {
        if case .mapped = backing { return true }
        return false
    }

    /// Writable view of an owned storage. Mapped storages are read-only; writing to one is a
    /// programming error, never a consequence of input data.
    public var mutableBytes: UnsafeMutableRawBufferPointer {
        precondition(ownedBase != nil, "mapped storages are read-only")
        return UnsafeMutableRawBufferPointer(mutating: bytes)
    }
}
