extension String {
    /// This text made safe to embed in a one-line error message or a table cell.
    ///
    /// Names in error messages often come straight from a hostile file (zip member names, pickle
    /// strings, JSON keys). Echoed raw, a newline splits the "one line" a user or script expects,
    /// an escape sequence repaints the terminal, and a bidi override makes the text lie. So:
    /// - control characters (C0, DEL, C1), format characters (bidi overrides, zero-width marks)
    ///   and line/paragraph separators become `\n`, `\r`, `\t`, `\0` or `\u{…}`;
    /// - a backslash becomes `\\`, so the escaped form is unambiguous;
    /// - text longer than `messageEscapingLimit` characters is cut, saying how much was left out,
    ///   so a 64 KB name cannot flood the terminal.
    /// Printable text (any script, emoji) is returned unchanged.
    public var escapedForMessage: String {
        var out = ""
        var kept = 0
        var scalars = unicodeScalars.makeIterator()
        while let u = scalars.next() {
            if kept == messageEscapingLimit {
                var rest = 1
                while scalars.next() != nil { rest += 1 }
                out += "…(\(rest) more characters)"
                break
            }
            kept += 1
            switch u {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\0": out += "\\0"
            default:
                switch u.properties.generalCategory {
                case .control, .format, .lineSeparator, .paragraphSeparator, .surrogate, .privateUse, .unassigned:
                    out += "\\u{" + String(u.value, radix: 16) + "}"
                default:
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out
    }
}

/// Longest text (in Unicode scalars) `escapedForMessage` keeps; real tensor names, paths and zip
/// members are far shorter.
public let messageEscapingLimit = 256
