import ArgumentParser
import Foundation

/// A file a command skipped, and why (`skipped` in every --json summary that reads images).
struct SkippedFile: Encodable {
    var file: String
    var reason: String

    /// Decoder messages usually start with the path already; the reason is kept without it.
    init(file: String, reason: String) {
        self.file = file
        self.reason = reason.hasPrefix(file + ": ") ? String(reason.dropFirst(file.count + 2)) : reason
    }
}

/// Prints an Encodable value as one JSON document on stdout.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    // One key style for every command (docs/json-output.md): Swift property names become snake_case;
    // dictionary keys (tensor names, metadata) are data and stay as they are.
    encoder.keyEncodingStrategy = .convertToSnakeCase
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Left-aligned text columns (the last column may be right-aligned numbers).
func renderTable(_ header: [String], _ rows: [[String]], rightAligned: Set<Int> = []) -> String {
    var widths = header.map(\.count)
    for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in
            let pad = String(repeating: " ", count: widths[i] - c.count)
            return rightAligned.contains(i) ? pad + c : c + pad
        }.joined(separator: "  ").trimmingTrailingSpaces()
    }
    return ([line(header)] + rows.map(line)).joined(separator: "\n")
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = self
        while s.last == " " { s.removeLast() }
        return s
    }
}

/// 12,345,678
func grouped(_ n: Int) -> String {
    let digits = String(n.magnitude)
    var out = ""
    for (i, c) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return (n < 0 ? "-" : "") + out
}

func humanBytes(_ n: Int) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"]
    var v = Double(n), u = 0
    while v >= 1000 && u < units.count - 1 { v /= 1000; u += 1 }
    return u == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[u])
}
