import CZip
import TensorStore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One member of a zip archive, as its central directory describes it (ZIP64 fields applied).
public struct ZipEntry: Sendable, Equatable {
    public var name: String
    /// 0 = stored, 8 = deflate.
    public var method: UInt16
    public var flags: UInt16
    public var crc32: UInt32
    public var compressedSize: Int
    public var uncompressedSize: Int
    public var localHeaderOffset: Int
    /// Where the member's bytes start: local header offset + 30 + name length + local extra length.
    public var dataOffset: Int

    public var isStored: Bool { method == 0 }
}

/// A zip archive over a memory-mapped file. The central directory is walked here (libzip exposes no
/// data offsets), so stored members can be handed out as mapped `Storage` without a copy; compressed
/// members are inflated through libzip. Every offset and size is checked against the file.
public final class ZipArchive {
    public let file: MappedFile
    public let entries: [ZipEntry]
    /// What inflating members may allocate, for this archive's whole life (members may overlap in
    /// the file, so each one fitting is not enough). Readers charge their own allocations to it too.
    public let budget: MemoryBudget
    private let index: [String: Int]

    public var path: String { file.path }

    public convenience init(path: String, limits: ReadLimits = .default) throws {
        try self.init(file: MappedFile(path: path), limits: limits)
    }

    public convenience init(file: MappedFile, limits: ReadLimits = .default) throws {
        try self.init(file: file, budget: MemoryBudget(limits))
    }

    /// An archive whose inflations are charged to `budget`, which the caller may share with other
    /// files read as one (an HF folder's shards).
    public init(file: MappedFile, budget: MemoryBudget) throws {
        self.file = file
        self.budget = budget
        let entries = try withExtendedLifetime(file) { try ZipArchive.readDirectory(file.bytes, path: file.path, descriptor: file.descriptor) }
        var index: [String: Int] = [:]
        for (i, e) in entries.enumerated() {
            guard index[e.name] == nil else { throw ZipError.duplicateEntry(path: file.path, name: e.name) }
            index[e.name] = i
        }
        self.entries = entries
        self.index = index
    }

    public func entry(named name: String) -> ZipEntry? {
        index[name].map { entries[$0] }
    }

    /// The member's bytes: a mapped slice of the file when stored (no copy), else inflated into
    /// owned memory charged to `budget` (throws `TensorStoreError.memoryLimitExceeded` beyond it).
    public func storage(for entry: ZipEntry) throws -> Storage {
        if entry.isStored {
            return try Storage(file: file, offset: entry.dataOffset, length: entry.compressedSize)
        }
        try chargeInflation(entry)
        let storage = Storage(byteCount: entry.uncompressedSize)
        try inflate(entry, into: storage.mutableBytes)
        return storage
    }

    /// The member's bytes as an array (small members: `data.pkl`, `byteorder`, `version`).
    public func contents(of entry: ZipEntry) throws -> [UInt8] {
        if entry.isStored {
            return withExtendedLifetime(file) {
                Array(file.bytes[entry.dataOffset..<(entry.dataOffset + entry.compressedSize)])
            }
        }
        try chargeInflation(entry)
        var out = [UInt8](repeating: 0, count: entry.uncompressedSize)
        try out.withUnsafeMutableBytes { try inflate(entry, into: $0) }
        return out
    }

    /// The size a deflated member declares is within deflate's ratio of its compressed bytes, but
    /// that still lets a few megabytes claim gigabytes: the budget bounds what all inflations add up to.
    private func chargeInflation(_ entry: ZipEntry) throws {
        try budget.charge(entry.uncompressedSize, for: "inflating zip entry '\(entry.name.escapedForMessage)'")
    }

    // MARK: - Central directory

    private static let eocdSignature: UInt32 = 0x0605_4B50
    private static let eocd64Signature: UInt32 = 0x0606_4B50
    private static let locatorSignature: UInt32 = 0x0706_4B50
    private static let centralSignature: UInt32 = 0x0201_4B50
    private static let localSignature: UInt32 = 0x0403_4B50

    /// `descriptor`, when given, is the mapped file's: local headers are read from it (see below).
    static func readDirectory(_ bytes: UnsafeRawBufferPointer, path: String, descriptor: Int32 = -1) throws -> [ZipEntry] {
        let size = bytes.count
        func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        func u32(_ at: Int) -> Int { u16(at) | u16(at + 2) << 16 }
        func u64(_ at: Int) -> UInt64 { UInt64(u32(at)) | UInt64(u32(at + 4)) << 32 }
        /// A ZIP64 value that must fit an Int and lie inside the file to mean anything.
        func fileSized(_ v: UInt64, _ what: String, entry: String? = nil) throws -> Int {
            guard v <= UInt64(size) else {
                throw ZipError.outOfBounds(path: path, entry: entry, detail: "\(what) \(v) beyond the file's \(size) bytes")
            }
            return Int(v)
        }

        guard size >= 22 else { throw ZipError.notAZip(path: path, detail: "\(size) bytes, shorter than an end-of-central-directory record") }
        // The EOCD is the last 22 bytes plus a comment of at most 65535 bytes: search backwards.
        var eocd = -1
        var at = size - 22
        let lowest = Swift.max(0, size - 22 - 0xFFFF)
        while at >= lowest {
            if u32(at) == eocdSignature && at + 22 + u16(at + 20) <= size { eocd = at; break }
            at -= 1
        }
        guard eocd >= 0 else { throw ZipError.notAZip(path: path, detail: "no end-of-central-directory record (truncated?)") }

        var count = u16(eocd + 10)
        var cdSize = u32(eocd + 12)
        var cdOffset = u32(eocd + 16)
        var directoryEnd = eocd
        if eocd >= 20 && u32(eocd - 20) == locatorSignature {
            let record = try fileSized(u64(eocd - 20 + 8), "ZIP64 end-of-central-directory offset")
            guard record <= eocd - 20 - 56 else {
                throw ZipError.outOfBounds(path: path, entry: nil, detail: "ZIP64 end-of-central-directory record at \(record) overlaps its locator")
            }
            guard u32(record) == eocd64Signature else {
                throw ZipError.corrupt(path: path, detail: "no ZIP64 end-of-central-directory record at byte \(record)")
            }
            count = Int(clamping: u64(record + 32)) // checked against the directory size below
            cdSize = try fileSized(u64(record + 40), "ZIP64 central directory size")
            cdOffset = try fileSized(u64(record + 48), "ZIP64 central directory offset")
            directoryEnd = record
        }
        guard cdOffset <= directoryEnd, cdSize <= directoryEnd - cdOffset else {
            throw ZipError.outOfBounds(path: path, entry: nil,
                                       detail: "central directory at bytes \(cdOffset)..<\(cdOffset &+ cdSize) does not lie before its end record at \(directoryEnd) (file has \(size) bytes)")
        }
        // Each entry takes at least 46 bytes: a count the directory cannot hold is a lie.
        guard count <= cdSize / 46 else {
            throw ZipError.corrupt(path: path, detail: "\(count) entries claimed in a central directory of \(cdSize) bytes")
        }

        // Local headers lie one per member all over the file: reading them through the mapping
        // faults in a page per member, which cost more than the rest of the directory walk. A
        // pread of the header and name into this buffer touches no mapping.
        let localBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 30 + 0xFFFF, alignment: 8)
        defer { localBuffer.deallocate() }
        func localHeader(at header: Int, nameLength: Int) -> UnsafeRawBufferPointer {
            let wanted = Swift.min(30 + nameLength, size - header)
            if descriptor >= 0 {
                var done = 0
                while done < wanted {
                    let n = pread(descriptor, localBuffer.baseAddress! + done, wanted - done, off_t(header + done))
                    if n > 0 { done += n } else if n < 0 && errno == EINTR { continue } else { break }
                }
                if done == wanted { return UnsafeRawBufferPointer(rebasing: localBuffer[0..<wanted]) }
            }
            return UnsafeRawBufferPointer(rebasing: bytes[header..<(header + wanted)])
        }

        var entries: [ZipEntry] = []
        entries.reserveCapacity(count)
        var p = cdOffset
        let cdEnd = cdOffset + cdSize
        for i in 0..<count {
            guard p + 46 <= cdEnd else { throw ZipError.truncated(path: path, detail: "central directory entry \(i) at byte \(p) runs past the directory") }
            guard u32(p) == centralSignature else {
                throw ZipError.corrupt(path: path, detail: "bad central directory signature at byte \(p) (entry \(i))")
            }
            let flags = UInt16(u16(p + 8)), method = UInt16(u16(p + 10))
            let crc = UInt32(u32(p + 16))
            var compressed = UInt64(u32(p + 20)), uncompressed = UInt64(u32(p + 24))
            let nameLength = u16(p + 28), extraLength = u16(p + 30), commentLength = u16(p + 32)
            var localOffset = UInt64(u32(p + 42))
            let recordEnd = p + 46 + nameLength + extraLength + commentLength
            guard recordEnd <= cdEnd else {
                throw ZipError.truncated(path: path, detail: "central directory entry \(i) at byte \(p) runs past the directory")
            }
            let nameBytes = UnsafeRawBufferPointer(rebasing: bytes[(p + 46)..<(p + 46 + nameLength)])
            let name = String(decoding: nameBytes, as: UTF8.self)

            // ZIP64 extra field (id 1): the 8-byte values whose 4-byte fields are saturated, in order.
            var e = p + 46 + nameLength
            let extraEnd = e + extraLength
            while e + 4 <= extraEnd {
                let id = u16(e), length = u16(e + 2)
                guard e + 4 + length <= extraEnd else {
                    throw ZipError.corrupt(path: path, detail: "extra field of '\(name.escapedForMessage)' runs past its entry")
                }
                if id == 1 {
                    var q = e + 4
                    func next() throws -> UInt64 {
                        guard q + 8 <= e + 4 + length else {
                            throw ZipError.corrupt(path: path, detail: "ZIP64 extra field of '\(name.escapedForMessage)' is too short")
                        }
                        defer { q += 8 }
                        return u64(q)
                    }
                    if uncompressed == 0xFFFF_FFFF { uncompressed = try next() }
                    if compressed == 0xFFFF_FFFF { compressed = try next() }
                    if localOffset == 0xFFFF_FFFF { localOffset = try next() }
                }
                e += 4 + length
            }

            guard flags & 1 == 0 else { throw ZipError.unsupportedEntry(path: path, entry: name, detail: "encrypted entries are not supported") }
            let compressedSize = try fileSized(compressed, "compressed size", entry: name)
            let header = try fileSized(localOffset, "local header offset", entry: name)
            guard header <= size - 30 else {
                throw ZipError.outOfBounds(path: path, entry: name, detail: "local header at byte \(header) runs past the end of the file (\(size) bytes)")
            }
            let local = localHeader(at: header, nameLength: nameLength)
            func localU16(_ at: Int) -> Int { Int(local[at]) | Int(local[at + 1]) << 8 }
            guard localU16(0) | localU16(2) << 16 == localSignature else {
                throw ZipError.corrupt(path: path, detail: "no local header signature at byte \(header) for entry '\(name.escapedForMessage)'")
            }
            let localName = localU16(26), localExtra = localU16(28)
            let dataOffset = header + 30 + localName + localExtra
            guard dataOffset <= size, compressedSize <= size - dataOffset else {
                throw ZipError.outOfBounds(path: path, entry: name,
                                           detail: "data at bytes \(dataOffset)..<\(dataOffset + compressedSize) past the end of the file (\(size) bytes)")
            }
            // Here 30 + localName <= size - header, so `local` holds the whole name when the lengths agree.
            guard localName == nameLength, local.count == 30 + nameLength,
                  UnsafeRawBufferPointer(rebasing: local[30...]).elementsEqual(nameBytes) else {
                throw ZipError.corrupt(path: path, detail: "local header at byte \(header) names a different entry than '\(name.escapedForMessage)'")
            }
            let uncompressedSize: Int
            switch method {
            case 0:
                guard uncompressed == compressed else {
                    throw ZipError.corrupt(path: path, detail: "stored entry '\(name.escapedForMessage)' has compressed size \(compressed) but size \(uncompressed)")
                }
                uncompressedSize = compressedSize
            case 8:
                // Deflate expands at most ~1032:1: a larger claim would make us allocate what the file cannot hold.
                let bound = Checked.product(compressedSize, 1032).flatMap { Checked.sum($0, 1024) } ?? Int.max
                guard uncompressed <= UInt64(bound) else {
                    throw ZipError.corrupt(path: path, detail: "deflated entry '\(name.escapedForMessage)' claims \(uncompressed) bytes from \(compressedSize)")
                }
                uncompressedSize = Int(uncompressed)
            default:
                throw ZipError.unsupportedEntry(path: path, entry: name, detail: "compression method \(method) (only stored and deflate)")
            }
            entries.append(ZipEntry(name: name, method: method, flags: flags, crc32: crc, compressedSize: compressedSize,
                                    uncompressedSize: uncompressedSize, localHeaderOffset: header, dataOffset: dataOffset))
            p = recordEnd
        }
        return entries
    }

    // MARK: - Compressed entries (libzip)

    /// libzip's view of the archive, opened on the first compressed member and kept: opening
    /// parses the whole central directory, so opening per member made N members cost N².
    private var libzipArchive: OpaquePointer?

    deinit {
        if let archive = libzipArchive { zip_discard(archive) }
    }

    private func openLibzip(for entry: ZipEntry) throws -> OpaquePointer {
        if let archive = libzipArchive { return archive }
        var error = zip_error_t()
        zip_error_init(&error)
        defer { zip_error_fini(&error) }
        guard let base = file.bytes.baseAddress,
              let source = zip_source_buffer_create(base, zip_uint64_t(file.count), 0, &error) else {
            throw ZipError.readFailed(path: path, entry: entry.name, message: "cannot open the archive in libzip")
        }
        guard let archive = zip_open_from_source(source, ZIP_RDONLY, &error) else {
            let message = String(cString: zip_error_strerror(&error))
            zip_source_free(source)
            throw ZipError.readFailed(path: path, entry: entry.name, message: message)
        }
        libzipArchive = archive
        return archive
    }

    private func inflate(_ entry: ZipEntry, into out: UnsafeMutableRawBufferPointer) throws {
        try withExtendedLifetime(file) {
            // libzip finds members by C string: a name with a NUL would find a different member.
            guard !entry.name.utf8.contains(0) else {
                throw ZipError.unsupportedEntry(path: path, entry: entry.name, detail: "a NUL byte in a compressed entry's name")
            }
            let archive = try openLibzip(for: entry)
            let at = zip_name_locate(archive, entry.name, ZIP_FL_ENC_RAW)
            guard at >= 0, let member = zip_fopen_index(archive, zip_uint64_t(at), 0) else {
                throw ZipError.readFailed(path: path, entry: entry.name, message: String(cString: zip_strerror(archive)))
            }
            defer { zip_fclose(member) }
            var done = 0
            while done < out.count {
                let n = zip_fread(member, out.baseAddress! + done, zip_uint64_t(out.count - done))
                guard n > 0 else {
                    let message = n < 0 ? String(cString: zip_file_strerror(member)) : "ends after \(done) of \(out.count) bytes"
                    throw ZipError.readFailed(path: path, entry: entry.name, message: message)
                }
                done += Int(n)
            }
            // Reading past the end makes libzip verify the CRC.
            var probe: UInt8 = 0
            let tail = zip_fread(member, &probe, 1)
            guard tail == 0 else {
                let message = tail < 0 ? String(cString: zip_file_strerror(member)) : "holds more than the \(out.count) bytes its directory entry claims"
                throw ZipError.readFailed(path: path, entry: entry.name, message: message)
            }
        }
    }
}
