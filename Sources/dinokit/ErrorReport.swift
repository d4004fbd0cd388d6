import ArgumentParser
import Foundation

// One error convention for every command (README, "Errors and exit codes"):
//
//     dinokit: error: <what is wrong, one line>
//     hint: <what to try>                          (usage errors only)
//
// on stderr; exit status 64 (EX_USAGE) when the command line is wrong (an unknown command or
// option, a missing or invalid value), 1 when the command could not do its work (a file, a
// format, a failed check), 0 on success. Scripts can tell the two apart by the status alone.

/// A command-line mistake that is found before ArgumentParser parses (an unknown subcommand).
struct UsageError: Error {
    var message: String
    var hint: String?
}

enum ErrorReport {
    /// A usage error: the message, a hint line, exit 64.
    static func usage(_ message: String, hint: String?) -> Never {
        // ArgumentParser's messages carry their own suggestion ("Unknown option '--x'. Did you
        // mean '--y'?"); it goes to the hint line so the error line stays the error.
        var message = message, hints = [String]()
        if let range = message.range(of: ". Did you mean ") {
            hints.append("did you mean " + message[range.upperBound...])
            message = String(message[..<range.lowerBound])
        }
        if let hint { hints.append(hint) }
        var text = "dinokit: error: \(oneLine(lowercasingFirst(message)))\n"
        if !hints.isEmpty { text += "hint: \(hints.joined(separator: " "))\n" }
        FileHandle.standardError.write(Data(text.utf8))
        exit(ExitCode.validationFailure.rawValue)
    }

    /// A runtime error: one line, exit 1.
    static func runtime(_ error: Error) -> Never {
        FileHandle.standardError.write(Data("dinokit: error: \(oneLine("\(error)"))\n".utf8))
        exit(ExitCode.failure.rawValue)
    }

    /// Messages from the readers are one line already; a multi-line one is joined so the
    /// error stays one line for scripts that read the first line of stderr.
    static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    }

    /// "Unknown option" -> "unknown option", as DinoKit's own messages start; "URL ..." stays.
    static func lowercasingFirst(_ text: String) -> String {
        guard let first = text.first, first.isUppercase, let second = text.dropFirst().first, second.isLowercase else { return text }
        return first.lowercased() + text.dropFirst()
    }
}
