import ArgumentParser
import Foundation
import TensorStore

@main
struct DinoKitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dinokit",
        abstract: "DINOv2 weights and models without Python: inspect, convert, run, verify.",
        discussion: """
        Errors go to stderr as one line, 'dinokit: error: ...', followed for usage errors by one \
        'hint: ...' line. Exit status: 0 success, 1 runtime error or failed check, 64 usage error.
        """,
        version: DinoKitVersion.string,
        subcommands: [Inspect.self, Convert.self, Forward.self, Verify.self, ExportONNX.self, Export.self, Probe.self, Embed.self, PCA.self, Attention.self, Train.self, TrainStepAlias.self, Bench.self])

    /// ArgumentParser's main, with DinoKit's error convention (ErrorReport) for every failure:
    /// unknown subcommands, parse and validation errors, and errors thrown by a command's run.
    /// Settings read from the environment are checked first: the readers take `ReadLimits.default`,
    /// which cannot report a bad `DINOKIT_READ_MEMORY_LIMIT`, and a limit the user set must not be
    /// silently replaced by the default. A usage error, as for a bad option.
    static func main() {
        do {
            _ = try ReadLimits.fromEnvironment()
        } catch {
            ErrorReport.usage("\(error)", hint: nil)
        }
        let arguments = Array(CommandLine.arguments.dropFirst())
        let path: CommandPath
        do {
            path = try CommandPath.resolve(arguments, root: self)
        } catch let error as UsageError {
            ErrorReport.usage(error.message, hint: error.hint)
        } catch {
            ErrorReport.runtime(error)
        }
        var command: ParsableCommand
        do {
            command = try parseAsRoot(arguments)
        } catch {
            // --help and --version are "errors" that exit 0; ArgumentParser prints them.
            if exitCode(for: error) == .success { exit(withError: error) }
            if let unknown = path.unknownOption(in: arguments) { ErrorReport.usage(unknown.message, hint: unknown.hint) }
            ErrorReport.usage(message(for: error), hint: path.helpHint)
        }
        do {
            try command.run()
        } catch let code as ExitCode {
            exit(withError: code)
        } catch let error as ValidationError {
            // Options that are wrong together or for the input are found in run(); still usage errors.
            ErrorReport.usage(error.message, hint: path.helpHint)
        } catch where exitCode(for: error) == .success {
            // --help and `dinokit help X` parse to a help command whose run() "fails" with the help text.
            exit(withError: error)
        } catch {
            ErrorReport.runtime(error)
        }
    }
}

enum DinoKitVersion {
    static let string = "0.1.0"
}
