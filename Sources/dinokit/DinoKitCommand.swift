import ArgumentParser
import Foundation
import TensorStore

@main
struct DinoKitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dinokit",
        abstract: "DINOv2 weights and models without Python: inspect, convert, run, verify.",
        version: DinoKitVersion.string,
        subcommands: [Inspect.self, Convert.self, Forward.self, Verify.self, ExportONNX.self, Export.self, Probe.self, Embed.self, PCA.self, Attention.self, Train.self, TrainStep.self, Bench.self])

    /// Settings read from the environment are checked before any command runs: the readers take
    /// `ReadLimits.default`, which cannot report a bad `DINOKIT_READ_MEMORY_LIMIT`, and a limit
    /// the user set must not be silently replaced by the default. Exit 64, as for a bad option.
    static func main() {
        do {
            _ = try ReadLimits.fromEnvironment()
        } catch {
            FileHandle.standardError.write(Data("dinokit: error: \(error)\n".utf8))
            Self.exit(withError: ExitCode.validationFailure)
        }
        main(nil)
    }
}

enum DinoKitVersion {
    static let string = "0.1.0"
}
