import Foundation
import TestSupport
import XCTest

/// --json, --num-heads, --threads, --kernels, --max-weight-memory and --quiet are defined once
/// (OptionGroups.swift): every command that has one shows the same help text and applies the same check.
final class SharedOptionsTests: XCTestCase {
    /// Each command with the shared options it takes.
    static let commands: [(command: [String], options: Set<String>)] = [
        (["inspect"], ["--json"]),
        (["convert"], ["--json", "--num-heads"]),
        (["forward"], ["--json", "--num-heads", "--threads", "--kernels", "--max-weight-memory"]),
        (["verify"], ["--json", "--num-heads", "--threads", "--kernels", "--max-weight-memory"]),
        (["export-onnx"], ["--json", "--num-heads"]),
        (["export"], ["--json"]),
        (["probe"], ["--json", "--num-heads", "--threads", "--kernels", "--max-weight-memory", "--quiet"]),
        (["embed"], ["--json", "--num-heads", "--threads", "--kernels", "--max-weight-memory", "--quiet"]),
        (["pca"], ["--json", "--num-heads", "--threads", "--kernels", "--max-weight-memory"]),
        (["attention"], ["--json", "--num-heads", "--threads", "--kernels", "--max-weight-memory"]),
        (["train", "ssl"], ["--json", "--num-heads", "--threads", "--kernels", "--quiet"]),
        (["train", "finetune"], ["--json", "--num-heads", "--threads", "--kernels", "--quiet"]),
        (["train", "step"], ["--json", "--threads", "--kernels"]),
        (["bench"], ["--json", "--num-heads", "--threads", "--kernels", "--max-weight-memory"]),
    ]

    /// The help paragraph of `option` in a --help text, whitespace collapsed; nil when absent.
    static func helpText(of option: String, in help: String) -> String? {
        let lines = help.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let start = lines.firstIndex(where: {
            let t = $0.trimmingCharacters(in: .whitespaces)
            return t.hasPrefix(option + " ") || t == option
        }) else { return nil }
        var text = String(lines[start].trimmingCharacters(in: .whitespaces).dropFirst(option.count))
        for line in lines[(start + 1)...] {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.isEmpty || t.hasPrefix("-") { break }
            text += " " + t
        }
        // The value name (<num-heads>) is part of the option column, not of the text.
        if text.trimmingCharacters(in: .whitespaces).hasPrefix("<"), let close = text.firstIndex(of: ">") {
            text = String(text[text.index(after: close)...])
        }
        return text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }

    func testEverySharedOptionHasOneHelpText() throws {
        var texts: [String: Set<String>] = [:]
        for (command, options) in Self.commands {
            let help = try dinokit(command + ["--help"])
            XCTAssertEqual(help.status, 0, "\(command) --help: \(help.stderr)")
            for option in ["--json", "--num-heads", "--threads", "--kernels", "--max-weight-memory", "--quiet"] {
                let text = Self.helpText(of: option, in: help.stdout)
                XCTAssertEqual(text != nil, options.contains(option), "\(command) \(option)")
                if let text { texts[option, default: []].insert(text) }
            }
        }
        for (option, variants) in texts {
            XCTAssertEqual(variants.count, 1, "\(option) has one help text: \(variants)")
        }
    }

    /// The commands that need one model's weights share --weights (probe, bench, train ssl and
    /// verify take them optionally, with alternatives, and explain them in their own words).
    func testRequiredWeightsHaveOneHelpText() throws {
        var texts: Set<String> = []
        for command in [["forward"], ["embed"], ["pca"], ["attention"], ["export-onnx"], ["train", "finetune"]] {
            let help = try dinokit(command + ["--help"])
            let text = try XCTUnwrap(Self.helpText(of: "--weights", in: help.stdout), "\(command) has --weights")
            texts.insert(text)
        }
        XCTAssertEqual(texts.count, 1, "\(texts)")
    }

    /// --kernels comes with the model options: every command that runs the model refuses a path
    /// that does not exist with the same usage error, and applies the one it is given (bench
    /// --gemm reports the path its GEMM ran on).
    func testKernelsAreCheckedAndAppliedTheSameEverywhere() throws {
        let commands: [[String]] = [
            ["forward", "--weights", "w", "--input", "i.npy", "--out", "o.npz"],
            ["embed", "--weights", "w", "--out", "o.npy", "a.png"],
            ["verify", "golden"],
            ["pca", "--weights", "w", "--out", "p.png", "a.png"],
            ["attention", "--weights", "w", "--out", "a.png", "a.png"],
            ["probe", "--train-features", "a.npy"],
            ["train", "ssl", "--weights", "w", "--data", "d", "--out", "o"],
            ["train", "finetune", "--weights", "w", "--data", "d", "--out", "o"],
            ["train", "step", "--bench"],
            ["bench"],
        ]
        for args in commands {
            assertUsageError(try dinokit(args + ["--kernels", "sse9"]), contains: "'sse9' is invalid for '--kernels")
        }
        let gemm = try dinokit(["bench", "--gemm", "--gemm-shape", "8x8x8", "--warmup-seconds", "0", "--kernels", "scalar", "--json"])
        XCTAssertEqual(gemm.status, 0, gemm.stderr)
        XCTAssertEqual(try gemm.json()["kernels"] as? String, "scalar")
        let out = makeTemporaryDirectory("dinokit-kernels")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let forward = try dinokit(["forward", "--weights", fixturePath("golden/tiny-plain/model.safetensors"), "--input",
                                   fixturePath("golden/tiny-plain/small.npy"), "--out", out + "/f.npz", "--kernels", "scalar"])
        XCTAssertEqual(forward.status, 0, forward.stderr)
    }

    func testThreadsAndHeadsAreCheckedTheSameEverywhere() throws {
        let cases: [[String]] = [
            ["forward", "--weights", "w", "--input", "i.npy", "--out", "o.npz", "--threads", "0"],
            ["embed", "--weights", "w", "--out", "o.npy", "a.png", "--threads", "-2"],
            ["train", "step", "--bench", "--threads", "0"],
            ["bench", "--threads", "0"],
        ]
        for args in cases {
            assertUsageError(try dinokit(args), contains: "--threads must be positive")
        }
        for args in [["convert", "a.pth", "b.safetensors", "--num-heads", "0"],
                     ["export-onnx", "--weights", "w", "--out", "o.onnx", "--num-heads", "0"],
                     ["verify", "golden", "--num-heads", "-1"]] {
            assertUsageError(try dinokit(args), contains: "--num-heads must be positive")
        }
    }
}
