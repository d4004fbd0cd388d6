/// CRC-32 as zip uses it (IEEE 802.3, reflected), sliced by 16 so checksumming a checkpoint's
/// storages while writing stays above disk speed.
public struct ZipCRC32 {
    public private(set) var value: UInt32 = 0

    public init() {}

    static let tables: [[UInt32]] = {
        var t = [[UInt32]](repeating: [UInt32](repeating: 0, count: 256), count: 16)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            t[0][i] = c
        }
        for i in 0..<256 {
            for k in 1..<16 { t[k][i] = (t[k - 1][i] >> 8) ^ t[0][Int(t[k - 1][i] & 0xFF)] }
        }
        return t
    }()

    private static let flat: [UInt32] = tables.flatMap { $0 }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        var c = ~value
        let n = bytes.count
        ZipCRC32.flat.withUnsafeBufferPointer { t in
            @inline(__always) func at(_ table: Int, _ byte: UInt32) -> UInt32 { t[table &* 256 &+ Int(byte & 0xFF)] }
            var i = 0
            while i + 16 <= n {
                let w0 = base.loadUnaligned(fromByteOffset: i, as: UInt32.self).littleEndian ^ c
                let w1 = base.loadUnaligned(fromByteOffset: i + 4, as: UInt32.self).littleEndian
                let w2 = base.loadUnaligned(fromByteOffset: i + 8, as: UInt32.self).littleEndian
                let w3 = base.loadUnaligned(fromByteOffset: i + 12, as: UInt32.self).littleEndian
                c = at(15, w0) ^ at(14, w0 >> 8) ^ at(13, w0 >> 16) ^ at(12, w0 >> 24)
                    ^ at(11, w1) ^ at(10, w1 >> 8) ^ at(9, w1 >> 16) ^ at(8, w1 >> 24)
                    ^ at(7, w2) ^ at(6, w2 >> 8) ^ at(5, w2 >> 16) ^ at(4, w2 >> 24)
                    ^ at(3, w3) ^ at(2, w3 >> 8) ^ at(1, w3 >> 16) ^ at(0, w3 >> 24)
                i += 16
            }
            while i < n {
                c = t[Int((c ^ UInt32(base.load(fromByteOffset: i, as: UInt8.self))) & 0xFF)] ^ (c >> 8)
                i += 1
            }
        }
        value = ~c
    }

    public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var c = ZipCRC32()
        c.update(bytes)
        return c.value
    }
}
