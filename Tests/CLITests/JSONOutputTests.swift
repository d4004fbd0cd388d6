import Foundation
import TestSupport
import XCTest

/// Every command's --json output parses, has the keys docs/json-output.md lists, and uses one
/// key style (snake_case) at every level.
final class JSONOutputTests: XCTestCase {
    struct Case: Sendable {
        var name: String
        var arguments: @Sendable (_ out: String) -> [String]
        var keys: Set<String>
        var optional: Set<String> = []
    }

    static let model = fixturePath("golden/tiny-plain/model.safetensors")
    static let image = fixturePath("images/china_320x272_q90_420.jpg")
    static let probe = fixturePath("probe/binary")

    /// Objects whose keys are data (tensor names, metadata, phase names), not schema.
    static let dataObjects: Set<String> = ["metadata", "arrays", "phases_ms_median"]

    static let cases: [Case] = [
        Case(name: "inspect", arguments: { _ in ["inspect", model] },
             keys: ["format", "layout", "variant", "family", "parameters", "tensors", "metadata", "seconds"], optional: ["architecture"]),
        Case(name: "convert", arguments: { ["convert", model, $0 + "/c.safetensors"] },
             keys: ["input", "output", "input_format", "input_layout", "output_format", "output_layout", "tensors", "bytes", "seconds"],
             optional: ["shards"]),
        Case(name: "forward", arguments: { ["forward", "--weights", model, "--input", fixturePath("golden/tiny-plain/small.npy"), "--out", $0 + "/f.npz"] },
             keys: ["out", "arrays", "weights", "seconds"], optional: ["variant", "peak_weight_bytes"]),
        Case(name: "verify", arguments: { _ in ["verify", fixturePath("golden/tiny-plain")] }, keys: ["pass", "cases"]),
        Case(name: "verify --precision bf16", arguments: { _ in ["verify", fixturePath("golden/tiny-plain"), "--precision", "bf16"] },
             keys: ["pass", "cases", "precision", "tolerance"]),
        Case(name: "verify --precision int8", arguments: { _ in ["verify", fixturePath("golden/tiny-plain"), "--precision", "int8"] },
             keys: ["pass", "cases", "precision", "tolerance"]),
        Case(name: "export-onnx", arguments: { ["export-onnx", "--weights", model, "--out", $0 + "/m.onnx"] },
             keys: ["path", "variant", "config", "image_size", "opset", "ir_version", "dtype", "inputs", "outputs", "nodes",
                    "initializers", "weight_bytes", "model_bytes", "external_data_bytes", "ignored", "seconds"],
             optional: ["external_data_path", "note"]),
        Case(name: "embed", arguments: { ["embed", "--weights", model, "--size", "28", "--quiet", "--out", $0 + "/e.npy", image] },
             keys: ["out", "shape", "output", "preprocessing", "files", "inputs", "embedded", "skipped", "resumed_from", "seconds",
                    "embed_seconds", "images_per_second"], optional: ["labels", "classes"]),
        Case(name: "pca", arguments: { ["pca", "--weights", model, "--size", "28", "--out", $0 + "/p.png", image] },
             keys: ["out", "threshold", "images", "seconds"]),
        Case(name: "attention", arguments: { ["attention", "--weights", model, "--size", "28", "--out", $0 + "/a.png", image] },
             keys: ["out", "grid", "heads", "max_probability", "seconds"]),
        Case(name: "probe", arguments: { _ in ["probe", "--quiet", "--train-features", probe + ".train.npy", "--train-labels", probe + ".train_labels.npy",
                                                "--test-features", probe + ".test.npy", "--test-labels", probe + ".test_labels.npy"] },
             keys: ["classes", "confusion", "logreg", "knn"]),
        Case(name: "probe --cifar10 --precision bf16", arguments: { _ in ["probe", "--quiet", "--weights", model, "--num-heads", "2", "--cifar10",
                                                                           fixturePath("cifar/cifar-10-batches-bin"), "--resize", "28", "--precision", "bf16"] },
             keys: ["classes", "confusion", "logreg", "knn", "precision"]),
        Case(name: "bench", arguments: { _ in ["bench", "--weights", model, "--batch", "1", "--size", "28", "--iterations", "1", "--warmup-seconds", "0"] },
             keys: ["variant", "size", "threads", "weights", "precision", "gemm_kernel", "results"]),
        Case(name: "bench --precision bf16", arguments: { _ in ["bench", "--weights", model, "--batch", "1", "--size", "28", "--iterations", "1", "--warmup-seconds", "0", "--precision", "bf16"] },
             keys: ["variant", "size", "threads", "weights", "precision", "gemm_kernel", "results"]),
        Case(name: "bench --precision int8", arguments: { _ in ["bench", "--weights", model, "--batch", "1", "--size", "28", "--iterations", "1", "--warmup-seconds", "0", "--precision", "int8"] },
             keys: ["variant", "size", "threads", "weights", "precision", "gemm_kernel", "results"]),
        Case(name: "bench --gemm", arguments: { _ in ["bench", "--gemm", "--gemm-shape", "8x8x8", "--warmup-seconds", "0"] },
             keys: ["m", "k", "n", "threads", "kernels", "openblas_core", "dinokit_gflops", "openblas_gflops"]),
        Case(name: "train step", arguments: { _ in ["train", "step", fixturePath("sslstep/centering-shared")] },
             keys: ["pass", "steps", "grads", "final"]),
        Case(name: "train finetune", arguments: { ["train", "finetune", "--weights", fixturePath("finetune/backbone.safetensors"), "--data",
                                                   fixturePath("finetune/images"), "--out", $0 + "/ft", "--epochs", "1", "--image-size", "28", "--quiet"] },
             keys: ["mode", "features", "classes", "train_images", "validation_images", "skipped", "epochs", "per_class_accuracy",
                    "confusion", "confusion_source", "out", "files", "seconds"]),
    ]

    func testEveryCommandPrintsDocumentedSnakeCaseKeys() throws {
        let docs = try String(contentsOfFile: repositoryRoot + "/docs/json-output.md", encoding: .utf8)
        for c in Self.cases {
            let out = makeTemporaryDirectory("dinokit-json")
            defer { try? FileManager.default.removeItem(atPath: out) }
            let r = try dinokit(c.arguments(out) + ["--json"])
            XCTAssertEqual(r.status, 0, "\(c.name): \(r.stderr)")
            guard r.status == 0 else { continue }
            let object = try r.json()
            checkKeys(object, c, docs: docs)
        }
    }

    /// train ssl and export need a run folder: one tiny run serves both.
    func testTrainSSLAndExport() throws {
        let out = makeTemporaryDirectory("dinokit-json-ssl")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let config = """
        {"global_crops_size": 28, "local_crops_size": 14, "local_crops_number": 2, "head_n_prototypes": 32,
         "ibot_head_n_prototypes": 32, "head_hidden_dim": 32, "head_bottleneck_dim": 16, "epochs": 1, "batch_size": 2}
        """
        try config.write(toFile: out + "/tiny.json", atomically: true, encoding: .utf8)
        let docs = try String(contentsOfFile: repositoryRoot + "/docs/json-output.md", encoding: .utf8)
        let ssl = Case(name: "train ssl", arguments: { _ in
            ["train", "ssl", "--weights", fixturePath("models/mini-plain.pth"), "--num-heads", "2", "--data", fixturePath("finetune/images"),
             "--out", out + "/run", "--config", out + "/tiny.json", "--stop-after", "2", "--quiet"] },
            keys: ["run", "steps", "total_steps", "epochs", "images", "skipped", "seconds", "images_per_second", "knn"],
            optional: ["first_loss", "last_loss", "checkpoint"])
        let export = Case(name: "export", arguments: { _ in ["export", out + "/run", "--out", out + "/t.safetensors"] },
                          keys: ["checkpoint", "step", "output", "format", "layout", "tensors", "bytes"])
        for c in [ssl, export] {
            let r = try dinokit(c.arguments(out) + ["--json"])
            XCTAssertEqual(r.status, 0, "\(c.name): \(r.stderr)")
            guard r.status == 0 else { return }
            checkKeys(try r.json(), c, docs: docs)
        }
    }

    /// Every command that reads images reports a file it skipped as {file, reason} (train
    /// finetune said {path, reason}); the broken PNG of the fine-tuning fixture is skipped by both.
    func testSkippedFilesAreFileAndReasonInEveryCommand() throws {
        let out = makeTemporaryDirectory("dinokit-json-skipped")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let broken = fixturePath("finetune/images/squares/broken.png")
        let runs: [(String, [String])] = [
            ("train finetune", ["train", "finetune", "--weights", fixturePath("finetune/backbone.safetensors"), "--data",
                                fixturePath("finetune/images"), "--out", out + "/ft", "--epochs", "1", "--image-size", "28", "--quiet"]),
            ("embed", ["embed", "--weights", fixturePath("finetune/backbone.safetensors"), "--size", "28", "--quiet", "--out", out + "/e.npy",
                       Self.image, broken]),
        ]
        for (name, arguments) in runs {
            let r = try dinokit(arguments + ["--json"])
            XCTAssertEqual(r.status, 0, "\(name): \(r.stderr)")
            let skipped = try XCTUnwrap(try r.json()["skipped"] as? [[String: Any]], name)
            XCTAssertEqual(skipped.count, 1, "\(name): \(skipped)")
            for entry in skipped {
                XCTAssertEqual(Set(entry.keys), ["file", "reason"], name)
                XCTAssertEqual(entry["file"] as? String, broken, name)
                XCTAssertFalse((entry["reason"] as? String ?? "").hasPrefix(broken), "\(name): the reason does not repeat the path")
            }
        }
        // summary.json is the same document as --json.
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/ft/summary.json"))) as? [String: Any]
        XCTAssertEqual((summary?["skipped"] as? [[String: Any]])?.first.map { Set($0.keys) }, ["file", "reason"])
    }

    private func checkKeys(_ object: [String: Any], _ c: Case, docs: String) {
        let keys = Set(object.keys)
        XCTAssertTrue(c.keys.isSubset(of: keys), "\(c.name): missing \(c.keys.subtracting(keys)) in \(keys.sorted())")
        XCTAssertTrue(keys.isSubset(of: c.keys.union(c.optional)), "\(c.name): undocumented \(keys.subtracting(c.keys.union(c.optional)))")
        for key in c.keys.union(c.optional) {
            XCTAssertTrue(docs.contains("`\(key)`"), "\(c.name): docs/json-output.md does not list `\(key)`")
        }
        for key in allKeys(object) {
            XCTAssertNotNil(key.range(of: "^[a-z][a-z0-9_]*$", options: .regularExpression), "\(c.name): key '\(key)' is not snake_case")
        }
    }

    /// Keys at every level, except inside objects whose keys are data.
    private func allKeys(_ value: Any) -> [String] {
        if let object = value as? [String: Any] {
            return object.flatMap { key, inner in [key] + (Self.dataObjects.contains(key) ? [] : allKeys(inner)) }
        }
        if let array = value as? [Any] { return array.flatMap(allKeys) }
        return []
    }
}
