import ArgumentParser

/// The subcommands a command line names ("dinokit train ssl"), read before ArgumentParser
/// parses: a mistyped subcommand then gets "unknown command" and the nearest name, where
/// ArgumentParser would report "unexpected arguments" or an unknown option of the parent.
struct CommandPath {
    var commands: [ParsableCommand.Type]

    /// "dinokit train ssl"
    var name: String { commands.map { $0._commandName }.joined(separator: " ") }

    /// The hint every usage error ends with.
    var helpHint: String { "see '\(name) --help'" }

    /// Follows the leading words of `arguments` (after an optional `help`) down the command
    /// tree. A word where a command has only subcommands, and none of that name, is a usage
    /// error naming the nearest subcommand.
    static func resolve(_ arguments: [String], root: ParsableCommand.Type) throws -> CommandPath {
        var path = CommandPath(commands: [root])
        var words = arguments[...]
        if words.first == "help" { words = words.dropFirst() }
        while let word = words.first, !word.hasPrefix("-"), let current = path.commands.last {
            let subcommands = current.configuration.subcommands
            guard !subcommands.isEmpty else { break }
            if let next = subcommands.first(where: { $0._commandName == word || $0.configuration.aliases.contains(word) }) {
                path.commands.append(next)
                words = words.dropFirst()
                continue
            }
            // Closures, not key paths: key paths on existential metatypes crash the 6.3 compiler.
            let visible = subcommands.filter { $0.configuration.shouldDisplay }.map { $0._commandName }
            let hint = nearest(word, among: visible).map { "did you mean '\(path.name) \($0)'? \(path.helpHint)" } ?? path.helpHint
            throw UsageError(message: "unknown command '\(path.name) \(word)'", hint: hint)
        }
        return path
    }

    /// The first --option in `arguments` that the command does not have, with the nearest one it
    /// has. ArgumentParser reports a missing required option before an unknown one, which hides
    /// the typo that made it missing ("--wieghts W" -> "missing --weights").
    func unknownOption(in arguments: [String]) -> UsageError? {
        guard let command = commands.last else { return nil }
        // Every --name in the help (its options, and names its text mentions: a superset is safe).
        let help = command.helpMessage(includeHidden: true, columns: 10_000)
        let known = Set(help.matches(of: /--[A-Za-z0-9][A-Za-z0-9-]*/).map { String($0.output) }).union(["--help", "--version"])
        for argument in arguments {
            if argument == "--" { break }
            guard argument.hasPrefix("--") else { continue }
            let name = String(argument.split(separator: "=", maxSplits: 1)[0])
            guard !known.contains(name) else { continue }
            let hint = Self.nearest(name, among: known.sorted()).map { "did you mean '\($0)'? \(helpHint)" } ?? helpHint
            return UsageError(message: "unknown option '\(name)'", hint: hint)
        }
        return nil
    }

    /// The candidate closest to `word` by edit distance, if it is close enough to be a typo
    /// (at most a third of the word's letters, at least one).
    static func nearest(_ word: String, among candidates: [String]) -> String? {
        let scored = candidates.map { ($0, editDistance(word, $0)) }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= Swift.max(1, word.count / 3) else { return nil }
        return best.0
    }
}

/// Optimal string alignment distance: insertions, deletions, substitutions and transpositions
/// of neighbours each cost 1, so "inspcet" is one edit from "inspect".
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty || b.isEmpty { return a.count + b.count }
    var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
    for i in 0...a.count { d[i][0] = i }
    for j in 0...b.count { d[0][j] = j }
    for i in 1...a.count {
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            d[i][j] = Swift.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { d[i][j] = Swift.min(d[i][j], d[i - 2][j - 2] + 1) }
        }
    }
    return d[a.count][b.count]
}
