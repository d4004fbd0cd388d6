import ArgumentParser

/// `dinokit train ssl|finetune`: training runs into a run folder (Training/Run).
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue DINOv2 self-supervised training, or fine-tune on labelled images.",
        subcommands: [TrainSSL.self, TrainFinetune.self])
}
