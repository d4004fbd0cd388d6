/// A bounds-checked reader of the protobuf wire format over a byte range of a mapped file: enough
/// to walk an ONNX ModelProto without protobuf-c's unpacker, which copies every byte field (the
/// weights) and recurses without a depth limit into nested graphs (a hostile file could overflow
/// the stack). The walk reads only the fields DinoKit uses, one level at a time.
struct ProtoCursor {
    enum Value {
        case varint(UInt64)
        case fixed64(UInt64)
        case fixed32(UInt32)
        /// A length-delimited field's payload, as absolute offsets into the file.
        case bytes(Range<Int>)
    }

    struct Field {
        var number: Int
        var value: Value
        /// Where the field's tag starts in the file, for error messages.
        var offset: Int
    }

    let data: UnsafeRawBufferPointer
    let path: String
    private(set) var position: Int
    let end: Int

    init(data: UnsafeRawBufferPointer, range: Range<Int>, path: String) {
        self.data = data
        self.path = path
        self.position = range.lowerBound
        self.end = range.upperBound
    }

    func malformed(_ offset: Int, _ detail: String) -> ONNXError {
        .malformed(path: path, offset: offset, detail: detail)
    }

    mutating func readVarint() throws -> UInt64 {
        let start = position
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < end else { throw malformed(start, "truncated varint (the file is cut short)") }
            let byte = data[position]
            position += 1
            if shift == 63 && byte > 1 { throw malformed(start, "varint longer than 64 bits") }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw malformed(start, "varint longer than 10 bytes") }
        }
    }

    /// The next field, or nil at the end of the message.
    mutating func next() throws -> Field? {
        guard position < end else { return nil }
        let offset = position
        let tag = try readVarint()
        let number = tag >> 3
        guard number > 0, number < (1 << 29) else { throw malformed(offset, "invalid field number \(number)") }
        let value: Value
        switch tag & 7 {
        case 0:
            value = .varint(try readVarint())
        case 1:
            guard end - position >= 8 else { throw malformed(offset, "truncated 64-bit field \(number)") }
            value = .fixed64(UInt64(littleEndian: data.loadUnaligned(fromByteOffset: position, as: UInt64.self)))
            position += 8
        case 2:
            let lengthOffset = position
            let length = try readVarint()
            guard length <= UInt64(end - position) else {
                throw malformed(lengthOffset, "field \(number) claims \(length) bytes but only \(end - position) remain")
            }
            value = .bytes(position..<(position + Int(length)))
            position += Int(length)
        case 5:
            guard end - position >= 4 else { throw malformed(offset, "truncated 32-bit field \(number)") }
            value = .fixed32(UInt32(littleEndian: data.loadUnaligned(fromByteOffset: position, as: UInt32.self)))
            position += 4
        default:
            throw malformed(offset, "unsupported wire type \(tag & 7) for field \(number)")
        }
        return Field(number: Int(number), value: value, offset: offset)
    }

    // MARK: - Typed views of a field

    func varint(_ f: Field) throws -> UInt64 {
        guard case let .varint(v) = f.value else { throw malformed(f.offset, "field \(f.number) should be a varint") }
        return v
    }

    /// A proto int64/int32 varint (two's complement in 64 bits).
    func int64(_ f: Field) throws -> Int64 { Int64(bitPattern: try varint(f)) }

    func range(_ f: Field) throws -> Range<Int> {
        guard case let .bytes(r) = f.value else { throw malformed(f.offset, "field \(f.number) should be length-delimited") }
        return r
    }

    func string(_ f: Field) throws -> String {
        let r = try range(f)
        return String(decoding: UnsafeRawBufferPointer(rebasing: data[r]), as: UTF8.self)
    }

    /// A cursor over an embedded message.
    func message(_ f: Field) throws -> ProtoCursor {
        ProtoCursor(data: data, range: try range(f), path: path)
    }

    /// Appends a repeated varint field, packed or not.
    func appendVarints(_ f: Field, to out: inout [UInt64]) throws {
        switch f.value {
        case let .varint(v): out.append(v)
        case let .bytes(r):
            var c = ProtoCursor(data: data, range: r, path: path)
            while c.position < c.end { out.append(try c.readVarint()) }
        default: throw malformed(f.offset, "field \(f.number) should hold varints")
        }
    }

    /// Appends a repeated fixed-width field (4 or 8 bytes), packed or not, as raw bit patterns.
    func appendFixed(_ f: Field, width: Int, to out: inout [UInt64]) throws {
        switch f.value {
        case let .fixed32(v) where width == 4: out.append(UInt64(v))
        case let .fixed64(v) where width == 8: out.append(v)
        case let .bytes(r):
            guard r.count % width == 0 else { throw malformed(f.offset, "packed field \(f.number) is not a multiple of \(width) bytes") }
            out.reserveCapacity(out.count + r.count / width)
            var p = r.lowerBound
            while p < r.upperBound {
                out.append(width == 4 ? UInt64(UInt32(littleEndian: data.loadUnaligned(fromByteOffset: p, as: UInt32.self)))
                                      : UInt64(littleEndian: data.loadUnaligned(fromByteOffset: p, as: UInt64.self)))
                p += width
            }
        default: throw malformed(f.offset, "field \(f.number) should hold \(width)-byte values")
        }
    }
}
