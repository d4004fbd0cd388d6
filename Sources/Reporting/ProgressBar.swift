import Foundation

/// A one-line progress bar on stderr, for long extraction and fitting runs:
///
///     extract train  [##########..........]  25000/50000  412.3/s  ETA 1:01
///
/// Drawn only when enabled — by default when stderr is a terminal — so logs and pipes stay
/// clean. Redraws at most ten times a second; `finish` ends the line. Safe to update from
/// several threads.
public final class ProgressBar: @unchecked Sendable {
    public let label: String
    public let total: Int
    public let enabled: Bool
    private let start = Date()
    private var lastDraw = Date.distantPast
    private var drawn = false
    private let lock = NSLock()

    /// True when stderr is a terminal.
    public static var stderrIsTerminal: Bool { isatty(2) != 0 }

    public init(label: String, total: Int, enabled: Bool = ProgressBar.stderrIsTerminal) {
        self.label = label
        self.total = Swift.max(0, total)
        self.enabled = enabled
    }

    /// `done` of `total` finished; `detail` is shown after the rate (e.g. the current objective).
    public func update(_ done: Int, detail: String? = nil) {
        guard enabled else { return }
        lock.lock()
        defer { lock.unlock() }
        let now = Date()
        guard now.timeIntervalSince(lastDraw) >= 0.1 || done >= total else { return }
        lastDraw = now
        draw(done, detail: detail, elapsed: now.timeIntervalSince(start))
    }

    /// Draws the final state (`done`, default all) and ends the line.
    public func finish(_ detail: String? = nil, done: Int? = nil) {
        guard enabled else { return }
        lock.lock()
        defer { lock.unlock() }
        draw(done ?? total, detail: detail, elapsed: Date().timeIntervalSince(start))
        FileHandle.standardError.write(Data("\n".utf8))
        drawn = false
    }

    private func draw(_ done: Int, detail: String?, elapsed: Double) {
        let line = ProgressBar.render(label: label, done: done, total: total, elapsed: elapsed, detail: detail)
        FileHandle.standardError.write(Data(("\r" + line + "\u{1B}[K").utf8))
        drawn = true
    }

    /// The text of one progress line (without the carriage return).
    public static func render(label: String, done: Int, total: Int, elapsed: Double, detail: String? = nil, width: Int = 24) -> String {
        let fraction = total > 0 ? Swift.min(1, Double(done) / Double(total)) : 1
        let filled = Int((fraction * Double(width)).rounded(.down))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        var parts = ["\(label)  [\(bar)]  \(done)/\(total)"]
        if elapsed > 0, done > 0 {
            let rate = Double(done) / elapsed
            parts.append(String(format: "%.1f/s", rate))
            if done < total { parts.append("ETA " + duration(Double(total - done) / rate)) }
        }
        if let detail { parts.append(detail) }
        return parts.joined(separator: "  ")
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
