import ArgumentParser

/// `dinokit train ssl|finetune|step`: training runs into a run folder (Training/Run), and the
/// replay of a PyTorch-made training step.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue DINOv2 self-supervised training, fine-tune on labelled images, or check training steps against PyTorch.",
        subcommands: [TrainSSL.self, TrainFinetune.self, TrainStep.self])
}
