import TensorStore

/// Streams a zip of STORED members into an `AtomicFileWriter`, laid out as torch's
/// `PyTorchStreamWriter` does: every member's data starts on an `alignment`-byte boundary (padding
/// goes into a local extra field with id "FB", filled with 'Z'), ZIP64 fields appear where sizes or
/// offsets outgrow 32 bits, and a ZIP64 end record is always written. Sizes and CRCs are known
/// before each member is written, so there are no data descriptors.
public struct ZipWriter {
    public let output: AtomicFileWriter
    public let alignment: Int
    private var records: [Record] = []
    private var names: Set<String> = []

    private struct Record {
        var name: [UInt8]
        var crc: UInt32
        var size: Int
        var headerOffset: Int
        var flags: UInt16
    }

    private static let dosTime: UInt16 = 0
    private static let dosDate: UInt16 = 0x21 // 1980-01-01: fixed, so equal inputs give equal files
    private static let limit32 = 0xFFFF_FFFF

    public init(output: AtomicFileWriter, alignment: Int = 64) {
        precondition(alignment >= 1)
        self.output = output
        self.alignment = alignment
    }

    public mutating func addStored(name: String, bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try addStored(name: name, bytes: $0) }
    }

    /// Writes one member. The CRC is computed first (one read of `bytes`), then header and data are
    /// streamed straight from `bytes`.
    public mutating func addStored(name: String, bytes: UnsafeRawBufferPointer) throws {
        try addStored(name: name, size: bytes.count, crc32: ZipCRC32.checksum(bytes)) { try $0.write(bytes) }
    }

    /// Writes one member whose size and CRC the caller already knows; `body` must write exactly `size` bytes.
    public mutating func addStored(name: String, size: Int, crc32: UInt32, body: (AtomicFileWriter) throws -> Void) throws {
        guard names.insert(name).inserted else {
            throw ZipError.duplicateEntry(path: output.path, name: name)
        }
        let nameBytes = Array(name.utf8)
        guard nameBytes.count <= 0xFFFF else {
            throw ZipError.unsupportedEntry(path: output.path, entry: name, detail: "name longer than 65535 bytes")
        }
        let offset = output.bytesWritten
        let zip64 = size >= ZipWriter.limit32
        let flags: UInt16 = nameBytes.allSatisfy { $0 < 0x80 } ? 0 : 0x0800 // bit 11: UTF-8 name

        var header = ZipRecordBytes()
        header.u32(0x0403_4B50)
        header.u16(zip64 ? 45 : 20)
        header.u16(flags)
        header.u16(0) // stored
        header.u16(ZipWriter.dosTime)
        header.u16(ZipWriter.dosDate)
        header.u32(crc32)
        header.u32(zip64 ? UInt32(ZipWriter.limit32) : UInt32(size))
        header.u32(zip64 ? UInt32(ZipWriter.limit32) : UInt32(size))
        header.u16(nameBytes.count)
        var extra = ZipRecordBytes()
        if zip64 {
            extra.u16(1)
            extra.u16(16)
            extra.u64(UInt64(size))
            extra.u64(UInt64(size))
        }
        // Pad with an "FB" field so the data lands on the alignment boundary.
        let beforePadding = offset + 30 + nameBytes.count + extra.bytes.count + 4
        let padding = (alignment - beforePadding % alignment) % alignment
        extra.u16(0x4246) // "FB"
        extra.u16(padding)
        extra.bytes.append(contentsOf: repeatElement(UInt8(ascii: "Z"), count: padding))
        header.u16(extra.bytes.count)
        header.bytes.append(contentsOf: nameBytes)
        header.bytes.append(contentsOf: extra.bytes)
        try output.write(header.bytes)

        let dataStart = output.bytesWritten
        try body(output)
        guard output.bytesWritten - dataStart == size else {
            throw ZipError.corrupt(path: output.path, detail: "member '\(name)' wrote \(output.bytesWritten - dataStart) bytes, announced \(size)")
        }
        records.append(Record(name: nameBytes, crc: crc32, size: size, headerOffset: offset, flags: flags))
    }

    /// Central directory, ZIP64 end record and locator, end record.
    public mutating func finish() throws {
        let cdOffset = output.bytesWritten
        var cd = ZipRecordBytes()
        for r in records {
            let bigSize = r.size >= ZipWriter.limit32, bigOffset = r.headerOffset >= ZipWriter.limit32
            var extra = ZipRecordBytes()
            if bigSize || bigOffset {
                extra.u16(1)
                extra.u16((bigSize ? 16 : 0) + (bigOffset ? 8 : 0))
                if bigSize {
                    extra.u64(UInt64(r.size))
                    extra.u64(UInt64(r.size))
                }
                if bigOffset { extra.u64(UInt64(r.headerOffset)) }
            }
            cd.u32(0x0201_4B50)
            cd.u16(0x031E) // made by: Unix, spec 3.0 (as torch)
            cd.u16(bigSize || bigOffset ? 45 : 20)
            cd.u16(r.flags)
            cd.u16(0)
            cd.u16(ZipWriter.dosTime)
            cd.u16(ZipWriter.dosDate)
            cd.u32(r.crc)
            cd.u32(bigSize ? UInt32(ZipWriter.limit32) : UInt32(r.size))
            cd.u32(bigSize ? UInt32(ZipWriter.limit32) : UInt32(r.size))
            cd.u16(r.name.count)
            cd.u16(extra.bytes.count)
            cd.u16(0) // comment
            cd.u16(0) // disk
            cd.u16(0) // internal attributes
            cd.u32(0) // external attributes
            cd.u32(bigOffset ? UInt32(ZipWriter.limit32) : UInt32(r.headerOffset))
            cd.bytes.append(contentsOf: r.name)
            cd.bytes.append(contentsOf: extra.bytes)
        }
        try output.write(cd.bytes)
        let cdSize = cd.bytes.count
        let eocd64Offset = output.bytesWritten

        var end = ZipRecordBytes()
        end.u32(0x0606_4B50)
        end.u64(44) // size of the rest of this record
        end.u16(0x031E)
        end.u16(45)
        end.u32(0)
        end.u32(0)
        end.u64(UInt64(records.count))
        end.u64(UInt64(records.count))
        end.u64(UInt64(cdSize))
        end.u64(UInt64(cdOffset))
        end.u32(0x0706_4B50) // locator
        end.u32(0)
        end.u64(UInt64(eocd64Offset))
        end.u32(1)
        end.u32(0x0605_4B50)
        end.u16(0)
        end.u16(0)
        end.u16(Swift.min(records.count, 0xFFFF))
        end.u16(Swift.min(records.count, 0xFFFF))
        end.u32(UInt32(Swift.min(cdSize, ZipWriter.limit32)))
        end.u32(UInt32(Swift.min(cdOffset, ZipWriter.limit32)))
        end.u16(0)
        try output.write(end.bytes)
    }
}

/// Little-endian byte assembly for zip records.
struct ZipRecordBytes {
    var bytes: [UInt8] = []
    mutating func u16(_ v: Int) { u16(UInt16(truncatingIfNeeded: v)) }
    mutating func u16(_ v: UInt16) {
        bytes.append(UInt8(v & 0xFF))
        bytes.append(UInt8(v >> 8))
    }
    mutating func u32(_ v: UInt32) {
        for s in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt32(s))) }
    }
    mutating func u64(_ v: UInt64) {
        for s in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt64(s))) }
    }
}
