import Foundation

/// Linear probing on frozen features, or training the backbone too.
public enum FinetuneMode: String, Sendable, Codable, CaseIterable {
    case linear, full
}

/// Everything that fixes a fine-tuning run (written to the run folder as config.json).
public struct FinetuneSettings: Sendable, Codable, Equatable {
    public var mode: FinetuneMode
    public var epochs: Int
    /// The head's peak learning rate (the backbone's is this × `backboneLRScale` × layer decay).
    public var lr: Double
    public var batchSize: Int
    /// Share of each class held out for validation (ignored with a separate validation folder).
    public var valFraction: Double
    public var features: FinetuneFeatureKind
    public var seed: UInt64
    /// "sgd" or "adamw".
    public var optimizer: String
    public var momentum: Double
    public var weightDecay: Double
    public var warmupEpochs: Int
    public var backboneLRScale: Double
    public var layerDecay: Double
    /// Crop size fed to the backbone, and the shorter-side resize before the evaluation crop.
    public var imageSize: Int
    public var resize: Int

    /// DINOv2's linear eval for `linear` (SGD, momentum 0.9, no weight decay, cosine per
    /// iteration, head on frozen features); AdamW with weight decay 0.05, backbone lr × 0.1 and
    /// layer decay 0.9 for `full`.
    public static func defaults(for mode: FinetuneMode) -> FinetuneSettings {
        switch mode {
        case .linear:
            return FinetuneSettings(mode: .linear, epochs: 10, lr: 0.01, batchSize: 64, valFraction: 0.2, features: .cls,
                                    seed: 0, optimizer: "sgd", momentum: 0.9, weightDecay: 0, warmupEpochs: 0,
                                    backboneLRScale: 0.1, layerDecay: 0.9, imageSize: 224, resize: 256)
        case .full:
            return FinetuneSettings(mode: .full, epochs: 5, lr: 1e-3, batchSize: 8, valFraction: 0.2, features: .cls,
                                    seed: 0, optimizer: "adamw", momentum: 0.9, weightDecay: 0.05, warmupEpochs: 1,
                                    backboneLRScale: 0.1, layerDecay: 0.9, imageSize: 224, resize: 256)
        }
    }

    public func validate() throws {
        func bad(_ m: String) -> TrainingError { .config(file: "settings", message: m) }
        guard epochs > 0 else { throw bad("--epochs must be positive") }
        guard lr > 0, lr.isFinite else { throw bad("--lr must be positive") }
        guard batchSize > 0 else { throw bad("--batch must be positive") }
        guard valFraction >= 0, valFraction < 1 else { throw bad("--val-fraction must be in [0, 1)") }
        guard ["sgd", "adamw"].contains(optimizer) else { throw bad("--optimizer must be sgd or adamw, not '\(optimizer)'") }
        guard momentum >= 0, momentum < 1 else { throw bad("--momentum must be in [0, 1)") }
        guard weightDecay >= 0, weightDecay.isFinite else { throw bad("--weight-decay must not be negative") }
        guard warmupEpochs >= 0, warmupEpochs < epochs || warmupEpochs == 0 else { throw bad("--warmup-epochs must be below --epochs") }
        guard backboneLRScale >= 0, layerDecay > 0, layerDecay <= 1 else {
            throw bad("--backbone-lr-scale must not be negative and --layer-decay must be in (0, 1]")
        }
        guard imageSize > 0, resize >= imageSize else { throw bad("--image-size must be positive and --resize at least as large") }
    }

    var optimizerKind: FinetuneOptimizerKind { optimizer == "sgd" ? .sgd(momentum: momentum) : .adamw }

    enum CodingKeys: String, CodingKey {
        case mode, epochs, lr, batchSize = "batch_size", valFraction = "val_fraction", features, seed, optimizer, momentum
        case weightDecay = "weight_decay", warmupEpochs = "warmup_epochs", backboneLRScale = "backbone_lr_scale"
        case layerDecay = "layer_decay", imageSize = "image_size", resize
    }
}

/// One line of metrics.jsonl: the state after an epoch. Linear mode measures the training split
/// with the epoch's final head; full mode averages over the epoch's batches (as they trained).
public struct FinetuneEpochMetrics: Sendable, Codable, Equatable {
    public var epoch: Int
    public var trainLoss: Double
    public var trainAccuracy: Double
    public var valLoss: Double?
    public var valAccuracy: Double?
    /// The learning rate of the epoch's last step.
    public var lr: Double
    public var seconds: Double

    enum CodingKeys: String, CodingKey {
        case epoch, trainLoss = "train_loss", trainAccuracy = "train_acc", valLoss = "val_loss", valAccuracy = "val_acc", lr, seconds
    }
}

/// What a run reports (summary.json, and `--json` on stdout).
public struct FinetuneSummary: Sendable, Codable {
    public var mode: FinetuneMode
    public var features: FinetuneFeatureKind
    public var classes: [String]
    public var trainImages: Int
    public var validationImages: Int
    public var skipped: [SkippedImage]
    public var epochs: [FinetuneEpochMetrics]
    /// Validation accuracy per class with the final head (nil for a class without validation images).
    public var perClassAccuracy: [Double?]
    public var confusion: [[Int]]
    /// What the confusion matrix counts: "validation" or, without a validation split, "train".
    public var confusionSource: String
    public var out: String
    public var files: [String]
    public var seconds: Double

    enum CodingKeys: String, CodingKey {
        case mode, features, classes, trainImages = "train_images", validationImages = "validation_images", skipped
        case epochs, perClassAccuracy = "per_class_accuracy", confusion, confusionSource = "confusion_source", out, files, seconds
    }
}
