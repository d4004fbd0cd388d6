import ArgumentParser

@main
struct DinoKitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dinokit",
        abstract: "DINOv2 weights and models without Python: inspect, convert, run, verify.",
        version: DinoKitVersion.string,
        subcommands: [Inspect.self, Convert.self, Forward.self, Verify.self, ExportONNX.self, Export.self, Probe.self, Embed.self, PCA.self, Attention.self, Train.self, TrainStep.self, Bench.self])
}

enum DinoKitVersion {
    static let string = "0.1.0"
}
