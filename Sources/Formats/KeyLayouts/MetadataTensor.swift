import TensorStore

/// A small tensor carried as a string in store metadata (`F32:1x1x384:<base64>`), for values a
/// layout has no tensor slot for (timm drops `mask_token` and folds `pos_embed[:, 0]` into
/// `cls_token`). safetensors `__metadata__` holds strings only, and consumers ignore it.
enum MetadataTensor {
    static func encode(_ t: Tensor) -> String {
        let dims = t.shape.dims.map(String.init).joined(separator: "x")
        return t.withContiguousBytes { "\(t.dtype.rawValue):\(dims):" + Base64.encode($0) }
    }

    static func decode(_ text: String, key: String) throws -> Tensor {
        let parts = text.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw LayoutError.badMetadata(key: key, reason: "expected DTYPE:DIMS:BASE64") }
        guard let dtype = DType(rawValue: String(parts[0])) else {
            throw LayoutError.badMetadata(key: key, reason: "unknown dtype '\(parts[0].prefix(16))'")
        }
        var dims: [Int] = []
        if !parts[1].isEmpty {
            for d in parts[1].split(separator: "x", omittingEmptySubsequences: false) {
                guard d.count <= 9, !d.isEmpty, d.allSatisfy({ $0.isASCII && $0.isNumber }), let v = Int(d) else {
                    throw LayoutError.badMetadata(key: key, reason: "bad dimension '\(d.prefix(16))'")
                }
                dims.append(v)
            }
        }
        guard let bytes = Base64.decode(parts[2]) else { throw LayoutError.badMetadata(key: key, reason: "invalid base64") }
        let shape = Shape(dims)
        guard shape.checkedByteCount(elementSize: dtype.size) == bytes.count else {
            throw LayoutError.badMetadata(key: key, reason: "\(bytes.count) bytes do not hold \(dtype) \(shape)")
        }
        return try bytes.withUnsafeBytes { try Tensor(dtype: dtype, shape: shape, bytes: $0) }
    }
}

/// RFC 4648 base64 with padding.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: UnsafeRawBufferPointer) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i < bytes.count {
            let b0 = UInt32(bytes[i])
            let b1 = i + 1 < bytes.count ? UInt32(bytes[i + 1]) : 0
            let b2 = i + 2 < bytes.count ? UInt32(bytes[i + 2]) : 0
            let v = b0 << 16 | b1 << 8 | b2
            out.append(alphabet[Int(v >> 18 & 63)])
            out.append(alphabet[Int(v >> 12 & 63)])
            out.append(i + 1 < bytes.count ? alphabet[Int(v >> 6 & 63)] : UInt8(ascii: "="))
            out.append(i + 2 < bytes.count ? alphabet[Int(v & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode<S: StringProtocol>(_ text: S) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 4 == 0 else { return nil }
        func value(_ c: UInt8) -> UInt32? {
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): return UInt32(c - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): return UInt32(c - UInt8(ascii: "a") + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(c - UInt8(ascii: "0") + 52)
            case UInt8(ascii: "+"): return 62
            case UInt8(ascii: "/"): return 63
            default: return nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count / 4 * 3)
        var i = 0
        while i < chars.count {
            let last = i + 4 == chars.count
            let pad = last ? (chars[i + 3] == UInt8(ascii: "=") ? (chars[i + 2] == UInt8(ascii: "=") ? 2 : 1) : 0) : 0
            var v: UInt32 = 0
            for j in 0..<4 {
                if j >= 4 - pad { v <<= 6; continue }
                guard let d = value(chars[i + j]) else { return nil }
                v = v << 6 | d
            }
            out.append(UInt8(v >> 16 & 0xFF))
            if pad < 2 { out.append(UInt8(v >> 8 & 0xFF)) }
            if pad < 1 { out.append(UInt8(v & 0xFF)) }
            i += 4
        }
        return out
    }
}
