/// A strict, bounded pull reader for JSON text (RFC 8259) held in memory, for headers that come from
/// untrusted files. Foundation's JSONSerialization silently keeps one of two duplicate keys and
/// builds a whole tree; this reader hands out one value at a time, so the caller sees every key
/// (and can reject duplicates) and nothing is allocated for values it skips. Nesting is bounded
/// (serde_json's limit, 128), so hostile input cannot exhaust the stack.
///
/// The text must already be valid UTF-8 (see `JSONReader.firstInvalidUTF8Offset`); string bytes are
/// then copied as they are and only escapes are decoded.
struct JSONReader {
    enum Kind: CustomStringConvertible {
        case object, array, string, number, bool, null

        var description: String {
            switch self {
            case .object: return "an object"
            case .array: return "an array"
            case .string: return "a string"
            case .number: return "a number"
            case .bool: return "a boolean"
            case .null: return "null"
            }
        }
    }

    /// A JSON number as written. `unsigned` when it is a plain non-negative integer that fits 64
    /// bits (no sign, fraction or exponent); otherwise the text, for error messages.
    enum Number: Equatable {
        case unsigned(UInt64)
        case other(String)
    }

    /// Where the reader is inside an object or array: commas are only valid between members.
    struct Cursor { fileprivate var first = true }

    struct SyntaxError: Error, Equatable {
        let offset: Int
        let message: String
    }

    static let defaultMaxDepth = 128

    let text: UnsafeRawBufferPointer
    let maxDepth: Int
    private(set) var position = 0
    private var depth = 0

    init(_ text: UnsafeRawBufferPointer, maxDepth: Int = JSONReader.defaultMaxDepth) {
        self.text = text
        self.maxDepth = maxDepth
    }

    func error(_ message: String, at offset: Int? = nil) -> SyntaxError {
        SyntaxError(offset: offset ?? position, message: message)
    }

    private mutating func skipWhitespace() {
        while position < text.count {
            switch text[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    private func describeByte(at i: Int) -> String {
        guard i < text.count else { return "end of text" }
        let b = text[i]
        return b >= 0x20 && b < 0x7F ? "'\(Character(Unicode.Scalar(b)))'" : "byte 0x" + String(b, radix: 16)
    }

    /// The kind of the next value (after whitespace), without consuming it.
    mutating func peekKind() throws -> Kind {
        skipWhitespace()
        guard position < text.count else { throw error("expected a value, found end of text") }
        switch text[position] {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool
        case UInt8(ascii: "n"): return .null
        default: throw error("expected a value, found \(describeByte(at: position))")
        }
    }

    private mutating func expect(_ byte: UInt8, _ what: String) throws {
        skipWhitespace()
        guard position < text.count, text[position] == byte else {
            throw error("expected \(what), found \(describeByte(at: position))")
        }
        position += 1
    }

    private mutating func enter() throws {
        depth += 1
        guard depth <= maxDepth else { throw error("nesting deeper than \(maxDepth) levels") }
    }

    // MARK: containers

    mutating func beginObject() throws -> Cursor {
        try expect(UInt8(ascii: "{"), "'{'")
        try enter()
        return Cursor()
    }

    /// The next member's key (the reader then stands before its value), or nil at the closing '}'.
    mutating func nextKey(_ cursor: inout Cursor) throws -> String? {
        // A '}' is only reached here right after '{' or a value: "{"a":1,}" fails below, at the
        // missing member name.
        skipWhitespace()
        if position < text.count, text[position] == UInt8(ascii: "}") {
            position += 1
            depth -= 1
            return nil
        }
        if !cursor.first { try expect(UInt8(ascii: ","), "',' or '}' in object") }
        cursor.first = false
        skipWhitespace()
        guard position < text.count, text[position] == UInt8(ascii: "\"") else {
            throw error("expected a member name in quotes, found \(describeByte(at: position))")
        }
        let key = try readString()
        try expect(UInt8(ascii: ":"), "':' after member name")
        return key
    }

    mutating func beginArray() throws -> Cursor {
        try expect(UInt8(ascii: "["), "'['")
        try enter()
        return Cursor()
    }

    /// True when another element follows (the reader then stands before it), false at ']'.
    mutating func nextElement(_ cursor: inout Cursor) throws -> Bool {
        // As in objects: "[1,]" fails when the caller reads the missing element.
        skipWhitespace()
        if position < text.count, text[position] == UInt8(ascii: "]") {
            position += 1
            depth -= 1
            return false
        }
        if !cursor.first { try expect(UInt8(ascii: ","), "',' or ']' in array") }
        cursor.first = false
        return true
    }

    // MARK: scalars

    mutating func readString() throws -> String {
        try expect(UInt8(ascii: "\""), "a string")
        let start = position
        // Fast path: no escapes.
        while position < text.count {
            let b = text[position]
            if b == UInt8(ascii: "\"") {
                let s = String(decoding: UnsafeRawBufferPointer(rebasing: text[start..<position]), as: UTF8.self)
                position += 1
                return s
            }
            if b == UInt8(ascii: "\\") { break }
            if b < 0x20 { throw error("control character 0x\(String(b, radix: 16)) inside a string") }
            position += 1
        }
        var bytes = [UInt8](UnsafeRawBufferPointer(rebasing: text[start..<position]))
        while position < text.count {
            let b = text[position]
            if b == UInt8(ascii: "\"") {
                position += 1
                return String(decoding: bytes, as: UTF8.self)
            }
            if b < 0x20 { throw error("control character 0x\(String(b, radix: 16)) inside a string") }
            if b != UInt8(ascii: "\\") {
                bytes.append(b)
                position += 1
                continue
            }
            let escapeStart = position
            position += 1
            guard position < text.count else { break }
            let e = text[position]
            position += 1
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): bytes.append(e)
            case UInt8(ascii: "b"): bytes.append(0x08)
            case UInt8(ascii: "f"): bytes.append(0x0C)
            case UInt8(ascii: "n"): bytes.append(0x0A)
            case UInt8(ascii: "r"): bytes.append(0x0D)
            case UInt8(ascii: "t"): bytes.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try readHex4()
                if (0xD800..<0xDC00).contains(scalar) {
                    // A high surrogate must be followed by an escaped low one.
                    guard position + 1 < text.count, text[position] == UInt8(ascii: "\\"), text[position + 1] == UInt8(ascii: "u") else {
                        throw error("unpaired surrogate \\u\(String(scalar, radix: 16)) in string", at: escapeStart)
                    }
                    position += 2
                    let low = try readHex4()
                    guard (0xDC00..<0xE000).contains(low) else {
                        throw error("unpaired surrogate \\u\(String(scalar, radix: 16)) in string", at: escapeStart)
                    }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw error("unpaired surrogate \\u\(String(scalar, radix: 16)) in string", at: escapeStart)
                }
                // Cannot fail: surrogates were excluded above and the value is below 0x110000.
                guard let u = Unicode.Scalar(scalar) else { throw error("invalid escape", at: escapeStart) }
                bytes.append(contentsOf: UTF8.encode(u)!)
            default:
                // describeByte, not the byte itself: a control byte would reach the message raw.
                throw error("invalid escape in string: a backslash followed by \(describeByte(at: position - 1))", at: escapeStart)
            }
        }
        throw error("unterminated string", at: start - 1)
    }

    private mutating func readHex4() throws -> UInt32 {
        guard position + 4 <= text.count else { throw error("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = text[position]
            let d: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = b - UInt8(ascii: "A") + 10
            default: throw error("invalid hex digit \(describeByte(at: position)) in \\u escape")
            }
            v = v << 4 | UInt32(d)
            position += 1
        }
        return v
    }

    /// A number, checked against JSON's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
    mutating func readNumber() throws -> Number {
        skipWhitespace()
        let start = position
        func digits() -> Int {
            let s = position
            while position < text.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(text[position]) { position += 1 }
            return position - s
        }
        var plain = true
        if position < text.count, text[position] == UInt8(ascii: "-") { position += 1; plain = false }
        let intStart = position
        let intDigits = digits()
        guard intDigits > 0 else { throw error("invalid number", at: start) }
        guard intDigits == 1 || text[intStart] != UInt8(ascii: "0") else { throw error("number with a leading zero", at: start) }
        if position < text.count, text[position] == UInt8(ascii: ".") {
            position += 1
            plain = false
            guard digits() > 0 else { throw error("invalid number: no digits after '.'", at: start) }
        }
        if position < text.count, text[position] == UInt8(ascii: "e") || text[position] == UInt8(ascii: "E") {
            position += 1
            plain = false
            if position < text.count, text[position] == UInt8(ascii: "+") || text[position] == UInt8(ascii: "-") { position += 1 }
            guard digits() > 0 else { throw error("invalid number: no exponent digits", at: start) }
        }
        let lexeme = String(decoding: UnsafeRawBufferPointer(rebasing: text[start..<position]), as: UTF8.self)
        if plain, let v = UInt64(lexeme) { return .unsigned(v) }
        return .other(lexeme)
    }

    mutating func readBool() throws -> Bool {
        skipWhitespace()
        if matchLiteral("true") { return true }
        if matchLiteral("false") { return false }
        throw error("invalid literal")
    }

    mutating func readNull() throws {
        skipWhitespace()
        guard matchLiteral("null") else { throw error("invalid literal") }
    }

    private mutating func matchLiteral(_ word: StaticString) -> Bool {
        let n = word.utf8CodeUnitCount
        guard position + n <= text.count else { return false }
        let w = UnsafeRawBufferPointer(start: word.utf8Start, count: n)
        guard text[position..<(position + n)].elementsEqual(w) else { return false }
        position += n
        return true
    }

    /// Consumes one value of any kind without keeping it.
    mutating func skipValue() throws {
        switch try peekKind() {
        case .object:
            var c = try beginObject()
            while try nextKey(&c) != nil { try skipValue() }
        case .array:
            var c = try beginArray()
            while try nextElement(&c) { try skipValue() }
        case .string: _ = try readString()
        case .number: _ = try readNumber()
        case .bool: _ = try readBool()
        case .null: try readNull()
        }
    }

    /// Succeeds when only whitespace remains.
    mutating func finish() throws {
        skipWhitespace()
        guard position == text.count else { throw error("trailing characters after the JSON value: \(describeByte(at: position))") }
    }

    // MARK: UTF-8

    /// Byte offset of the first ill-formed UTF-8 sequence (overlong forms, surrogates and values
    /// above U+10FFFF are ill-formed), or nil when all of `bytes` is valid UTF-8.
    static func firstInvalidUTF8Offset(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var i = 0
        let n = bytes.count
        while i < n {
            let b0 = bytes[i]
            if b0 < 0x80 { i += 1; continue }
            let length: Int
            var lower: UInt8 = 0x80, upper: UInt8 = 0xBF // allowed range of the second byte
            switch b0 {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; lower = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; upper = 0x9F
            case 0xF0: length = 4; lower = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; upper = 0x8F
            default: return i
            }
            guard i + length <= n else { return i }
            guard (lower...upper).contains(bytes[i + 1]) else { return i }
            for k in 2..<length where !(0x80...0xBF).contains(bytes[i + k]) { return i }
            i += length
        }
        return nil
    }
}
