import ArgumentParser
import Datasets
import Foundation
import Kernels
import Reporting
import Training

extension FinetuneMode: ExpressibleByArgument {}
extension FinetuneFeatureKind: ExpressibleByArgument {}

/// `dinokit train finetune`: a linear head on frozen features, or the whole backbone, trained
/// with cross-entropy on an ImageFolder (Training/Finetune).
struct TrainFinetune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finetune",
        abstract: "Fine-tune on labelled images: a linear head on frozen features, or the backbone too.",
        discussion: """
        --data is an ImageFolder tree (one subfolder of JPEG/PNG images per class). A seeded \
        stratified split holds out --val-fraction of each class for validation, unless --val-data \
        gives a separate tree. Unreadable files are reported and skipped.

        linear (default): features of the frozen backbone (cls, or cls + mean patch token as \
        DINOv2's linear eval with avgpool) are extracted once (resize --resize, centre crop \
        --image-size), then a linear head is trained with cross-entropy, mini-batch SGD with \
        momentum 0.9 (or --optimizer adamw) and a cosine learning-rate schedule per step.

        full: the backbone trains too, at --lr x --backbone-lr-scale with DINOv2's layer-wise \
        decay (--layer-decay; no weight decay on biases, norms, LayerScale), AdamW by default, \
        on RandomResizedCrop + horizontal flip crops (DINOv2's linear-eval train transform).

        The run folder gets config.json, split.json, metrics.jsonl (epoch, train_loss, train_acc, \
        val_loss, val_acc, lr), head.safetensors (weight (C, F), bias (C), class names in the \
        metadata), confusion.png, summary.json and, in full mode, backbone.safetensors (hub names).
        """)

    @OptionGroup var weightsOption: WeightsOption

    @Option(help: "Labelled ImageFolder tree (one subfolder per class).")
    var data: String

    @Option(help: "Run folder to write.")
    var out: String

    @Option(help: "linear (frozen backbone) or full (backbone trained too).")
    var mode: FinetuneMode = .linear

    @Option(help: "Passes over the training images (default: 10 linear, 5 full).")
    var epochs: Int?

    @Option(help: "Peak learning rate of the head (default: 0.01 linear with SGD, 1e-3 full with AdamW).")
    var lr: Double?

    @Option(help: "Images per step (default: 64 linear, 8 full).")
    var batch: Int?

    @Option(name: .customLong("val-fraction"), help: "Share of each class held out for validation.")
    var valFraction: Double = 0.2

    @Option(name: .customLong("val-data"), help: "A separate validation ImageFolder (no split then).")
    var valData: String?

    @Option(help: "Head input: cls, or cls+avgpool (cls token and mean patch token).")
    var features: FinetuneFeatureKind = .cls

    @Option(help: "Seed of the split, the head initialisation, the shuffles and the crops.")
    var seed: UInt64 = 0

    @Option(help: "sgd or adamw (default: sgd linear, adamw full).")
    var optimizer: String?

    @Option(help: "SGD momentum.")
    var momentum: Double = 0.9

    @Option(name: .customLong("weight-decay"), help: "Weight decay (default: 0 linear, 0.05 full).")
    var weightDecay: Double?

    @Option(name: .customLong("warmup-epochs"), help: "Linear lr warm-up before the cosine (default: 0 linear, 1 full).")
    var warmupEpochs: Int?

    @Option(name: .customLong("backbone-lr-scale"), help: "full: the backbone's lr as a share of --lr.")
    var backboneLRScale: Double = 0.1

    @Option(name: .customLong("layer-decay"), help: "full: layer-wise lr decay (DINOv2's layerwise_decay).")
    var layerDecay: Double = 0.9

    @Option(name: .customLong("image-size"), help: "Crop size fed to the backbone (a multiple of the patch size).")
    var imageSize: Int = 224

    @Option(help: "Shorter-side resize before the evaluation centre crop (default: image size x 256/224).")
    var resize: Int?

    @OptionGroup var modelOptions: ModelOptions

    @OptionGroup var jsonOption: JSONOption

    @OptionGroup var progress: QuietOption

    func run() throws {
        try modelOptions.requireF32("train finetune")
        var s = FinetuneSettings.defaults(for: mode)
        if let epochs { s.epochs = epochs }
        if let lr { s.lr = lr }
        if let batch { s.batchSize = batch }
        s.valFraction = valFraction
        s.features = features
        s.seed = seed
        if let optimizer { s.optimizer = optimizer }
        s.momentum = momentum
        if let weightDecay { s.weightDecay = weightDecay }
        // The default warm-up never takes a whole run (full mode with --epochs 1).
        s.warmupEpochs = warmupEpochs ?? Swift.min(s.warmupEpochs, s.epochs - 1)
        s.backboneLRScale = backboneLRScale
        s.layerDecay = layerDecay
        s.imageSize = imageSize
        s.resize = resize ?? imageSize * 256 / 224
        try s.validate()
        let parallelism = modelOptions.parallelism
        let run = FinetuneRun(weights: weightsOption.weights, data: data, validationData: valData, out: out, settings: s,
                              parallelism: parallelism, showProgress: !progress.quiet && ProgressBar.stderrIsTerminal)
        run.numHeads = modelOptions.numHeads
        let quiet = progress.quiet, json = jsonOption.json
        run.log = { message in
            if !quiet { FileHandle.standardError.write(Data("dinokit: \(message)\n".utf8)) }
        }
        run.onEpoch = { m in
            guard !quiet, !json else { return }
            let val = m.valAccuracy.map { String(format: "val loss %.4f  val acc %.2f%%", m.valLoss ?? 0, 100 * $0) } ?? "no validation"
            FileHandle.standardError.write(Data(String(format: "epoch %d  train loss %.4f  train acc %.2f%%  %@  lr %.3e\n",
                                                       m.epoch, m.trainLoss, 100 * m.trainAccuracy, val, m.lr).utf8))
        }
        let summary = try run.run()
        if jsonOption.json {
            try printJSON(summary)
        } else {
            printSummary(summary)
        }
    }

    private func printSummary(_ s: FinetuneSummary) {
        func pct(_ v: Double?) -> String { v.map { String(format: "%.2f%%", 100 * $0) } ?? "-" }
        print("\(s.mode.rawValue) fine-tune, features \(s.features.rawValue): \(s.classes.count) classes, train \(s.trainImages), validation \(s.validationImages), skipped \(s.skipped.count)")
        let rows = s.epochs.map { m in
            [String(m.epoch), String(format: "%.4f", m.trainLoss), pct(m.trainAccuracy),
             m.valLoss.map { String(format: "%.4f", $0) } ?? "-", pct(m.valAccuracy), String(format: "%.3e", m.lr)]
        }
        print(renderTable(["epoch", "train loss", "train acc", "val loss", "val acc", "lr"], rows, rightAligned: [0, 1, 2, 3, 4, 5]))
        print("\nper-class accuracy (\(s.confusionSource)):")
        let perClass = s.classes.indices.map { i in [s.classes[i], pct(s.perClassAccuracy[i]), String(s.confusion[i].reduce(0, +))] }
        print(renderTable(["class", "accuracy", "images"], perClass, rightAligned: [1, 2]))
        for skipped in s.skipped { print("skipped \(skipped.path): \(skipped.reason)") }
        print("\nwrote \(s.files.map { (s.out as NSString).appendingPathComponent($0) }.joined(separator: ", "))")
    }
}
