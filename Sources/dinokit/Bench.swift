import ArgumentParser
import DINOv2
import Foundation
import Kernels
import TensorStore

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time the DINOv2 forward on this CPU: ms per image, images/s, GFLOP/s and peak memory per batch size.",
        discussion: """
        Runs forward (the normed class token, as the hub model's forward) on seeded synthetic images. \
        Before timing, the model runs for --warmup-seconds so that every core is busy and clocked up; each \
        batch size then gets one untimed forward (which sizes the workspace) and --iterations timed ones \
        (default: at least 5 and about 3 s). GFLOP/s counts one forward's multiply-adds as 2 FLOPs: patch \
        embedding, qkv, attention (QKᵀ and PV), proj and the MLP/SwiGLU. Peak RSS is the process's \
        high-water mark after that batch size (getrusage), so order batch sizes from small to large. \
        Threads: --threads, else DINOKIT_NUM_THREADS, else all cores. With --gemm, measures instead the \
        single-precision GEMM throughput of DinoKit's micro-kernel and of OpenBLAS (whose kernel follows \
        OPENBLAS_CORETYPE at process start) on one linear-layer-shaped product.
        """)

    @Option(help: "Weights in any format DinoKit reads.")
    var weights: String?

    @Option(name: .customLong("random-weights"), help: "Instead of --weights: seeded random weights shaped as this hub variant (dinov2_vits14, dinov2_vitb14_reg, ...).")
    var randomWeights: String?

    @Option(help: "Comma-separated batch sizes.")
    var batch: String = "1,8,32"

    @Option(help: "Image side in pixels (a multiple of the patch size).")
    var size: Int = 224

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Timed forwards per batch size (default: at least 5 and about 3 seconds).")
    var iterations: Int?

    @Option(name: .customLong("warmup-seconds"), help: "Seconds of untimed forwards before timing.")
    var warmupSeconds: Double = 4

    @Flag(help: "Measure GEMM throughput (DinoKit's micro-kernel vs OpenBLAS) instead of the model.")
    var gemm = false

    @Option(name: .customLong("gemm-shape"), help: "With --gemm: MxKxN, A (M, K) times a linear layer's (N, K) weight.")
    var gemmShape: String = "1576x384x1152"

    @Flag(help: "Also time each step of the forward (GEMMs with their fused epilogues, attention, norms) and print where the time goes per batch size (on stderr with --json).")
    var profile = false

    @OptionGroup var jsonOption: JSONOption

    struct Result: Encodable {
        var batch: Int
        var msPerImageMedian: Double
        var msPerImageMin: Double
        var msPerImageMax: Double
        var imagesPerSecond: Double
        var gflops: Double
        var peakRSSMB: Double

        enum CodingKeys: String, CodingKey {
            case batch
            case msPerImageMedian = "ms_per_image_median"
            case msPerImageMin = "ms_per_image_min"
            case msPerImageMax = "ms_per_image_max"
            case imagesPerSecond = "images_per_second"
            case gflops
            case peakRSSMB = "peak_rss_mb"
        }
    }

    struct Report: Encodable {
        var variant: String
        var size: Int
        var threads: Int
        /// "in-memory", or "streamed" (block by block, --max-weight-memory).
        var weights: String
        var precision: String
        /// The GEMM kernel that ran: the path for f32, the bf16 or int8 tile otherwise.
        var gemmKernel: String
        var results: [Result]

        enum CodingKeys: String, CodingKey {
            case variant, size, threads, weights, precision, results
            case gemmKernel = "gemm_kernel"
        }
    }

    struct GEMMReport: Encodable {
        var m: Int, k: Int, n: Int
        var threads: Int
        var kernels: String
        var openblasCore: String
        var dinokitGFLOPS: Double
        var openblasGFLOPS: Double

        enum CodingKeys: String, CodingKey {
            case m, k, n, threads, kernels
            case openblasCore = "openblas_core"
            case dinokitGFLOPS = "dinokit_gflops"
            case openblasGFLOPS = "openblas_gflops"
        }
    }

    func run() throws {
        let parallelism = modelOptions.parallelism
        if gemm {
            try runGEMM(threads: parallelism.threads)
            return
        }
        let batches = try parseBatchSizes(batch)
        if let iterations, iterations <= 0 { throw ValidationError("--iterations must be positive") }
        let store: TensorStore
        switch (weights, randomWeights) {
        case let (path?, nil): store = try loadWeights(path: path)
        case let (nil, variant?):
            guard let shape = RandomWeights.variants[variant] else {
                throw ValidationError("unknown variant '\(variant)'; known: \(RandomWeights.variants.keys.sorted().joined(separator: ", "))")
            }
            store = try RandomWeights.hubStore(shape)
        default: throw ValidationError("give exactly one of --weights and --random-weights")
        }
        let model = try modelOptions.model(store: store)
        let c = model.config
        guard size > 0, size % c.patchSize == 0 else {
            throw ValidationError("--size \(size) is not a multiple of the patch size \(c.patchSize)")
        }
        let flops = forwardFLOPs(c, height: size, width: size)
        let workspace = Workspace()
        let inputs = try Dictionary(uniqueKeysWithValues: Set(batches).map { b in
            (b, try SyntheticInput.tensor(seed: 7, shape: [b, c.inChannels, size, size]))
        })

        if let first = batches.first, let x = inputs[first], warmupSeconds > 0 {
            let end = monotonicSeconds() + warmupSeconds
            repeat { _ = try model(x, workspace: workspace) } while monotonicSeconds() < end
        }
        var results: [Result] = []
        var profiles: [(Int, ForwardProfile)] = []
        for b in batches {
            guard let x = inputs[b] else { continue }
            _ = try model(x, workspace: workspace)
            if profile {
                workspace.profile = ForwardProfile()
            }
            defer {
                if let p = workspace.profile { profiles.append((b, p)) }
                workspace.profile = nil
            }
            var seconds: [Double] = []
            let started = monotonicSeconds()
            while true {
                let t0 = monotonicSeconds()
                _ = try model(x, workspace: workspace)
                seconds.append(monotonicSeconds() - t0)
                if let iterations {
                    if seconds.count >= iterations { break }
                } else if seconds.count >= 5 && (monotonicSeconds() - started >= 3 || seconds.count >= 200) {
                    break
                }
            }
            seconds.sort()
            let median = seconds.count % 2 == 1 ? seconds[seconds.count / 2]
                : (seconds[seconds.count / 2 - 1] + seconds[seconds.count / 2]) / 2
            let perImage = 1000 / Double(b)
            results.append(Result(batch: b, msPerImageMedian: median * perImage, msPerImageMin: seconds[0] * perImage,
                                  msPerImageMax: seconds[seconds.count - 1] * perImage,
                                  imagesPerSecond: Double(b) / median, gflops: flops * Double(b) / median / 1e9,
                                  peakRSSMB: peakResidentMegabytes()))
        }
        let gemmKernel = KernelDispatch.gemmKernel(for: model.precision)
        let report = Report(variant: c.variant ?? "custom", size: size, threads: parallelism.threads,
                            weights: model.loading == .streamed ? "streamed" : "in-memory",
                            precision: model.precision.rawValue, gemmKernel: gemmKernel, results: results)
        let profileText = profiles.map { b, p in Self.render(profile: p, batch: b, threads: parallelism.threads) }.joined(separator: "\n\n")
        if jsonOption.json {
            try printJSON(report)
            if profile { FileHandle.standardError.write(Data((profileText + "\n").utf8)) }
            return
        }
        print("\(report.variant) at \(size)x\(size), \(report.threads) threads, kernels \(KernelDispatch.active.rawValue), " +
              "precision \(report.precision) (GEMM: \(gemmKernel)), " +
              String(format: "%.2f GFLOP per image", flops / 1e9))
        print(weightsLine(model))
        print(renderTable(
            ["batch", "ms/image median", "min", "max", "images/s", "GFLOP/s", "peak RSS MB"],
            results.map { r in
                [String(r.batch), String(format: "%.2f", r.msPerImageMedian), String(format: "%.2f", r.msPerImageMin),
                 String(format: "%.2f", r.msPerImageMax), String(format: "%.1f", r.imagesPerSecond),
                 String(format: "%.1f", r.gflops), String(format: "%.0f", r.peakRSSMB)]
            },
            rightAligned: Set(1...6)))
        if profile { print("\n" + profileText) }
    }

    /// Per step: ms per image (thread-seconds over the threads), share, GFLOP/s of its GEMMs.
    static func render(profile p: ForwardProfile, batch: Int, threads: Int) -> String {
        let entries = p.entries
        guard let forwards = entries.first?.calls, forwards > 0 else { return "batch \(batch): no steps recorded" }
        let total = entries.reduce(0) { $0 + $1.threadSeconds }
        let images = Double(forwards * batch), t = Double(threads)
        let rows = entries.map { e -> [String] in
            [e.name, String(format: "%.3f", e.threadSeconds / t * 1000 / images), String(format: "%.1f%%", 100 * e.threadSeconds / total),
             e.flops > 0 ? String(format: "%.1f", e.flops / (e.threadSeconds / t) / 1e9) : ""]
        }
        return "batch \(batch), \(forwards) forwards, \(threads) threads; steps summed over blocks, in thread time / threads:\n" +
            renderTable(["step", "ms/image", "share", "GFLOP/s"],
                        rows + [["total", String(format: "%.3f", total / t * 1000 / images), "100%", ""]], rightAligned: [1, 2, 3])
    }

    func runGEMM(threads: Int) throws {
        let parts = gemmShape.lowercased().split(separator: "x").compactMap { Int($0) }
        guard parts.count == 3, parts.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("--gemm-shape must be MxKxN with positive sizes, not '\(gemmShape)'")
        }
        let (m, k, n) = (parts[0], parts[1], parts[2])
        let t = measureGEMMThroughput(m: m, n: n, k: k, threads: threads, seconds: Swift.max(1, warmupSeconds / 2))
        let report = GEMMReport(m: m, k: k, n: n, threads: threads, kernels: KernelDispatch.active.rawValue,
                                openblasCore: BLASInfo.coreName, dinokitGFLOPS: t.dinokit, openblasGFLOPS: t.openblas)
        if jsonOption.json {
            try printJSON(report)
        } else {
            print("sgemm \(m)x\(k) · (\(n)x\(k))ᵀ, \(threads) threads (median of 5 rounds):")
            print(String(format: "  DinoKit (%@)      %.1f GFLOP/s", report.kernels, t.dinokit))
            print(String(format: "  OpenBLAS (%@)  %.1f GFLOP/s", report.openblasCore, t.openblas))
        }
    }
}

/// "1,8,32" -> [1, 8, 32].
func parseBatchSizes(_ text: String) throws -> [Int] {
    let sizes = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !sizes.isEmpty, sizes.allSatisfy({ ($0 ?? 0) > 0 }) else {
        throw ValidationError("--batch must be positive integers separated by commas, not '\(text)'")
    }
    return sizes.compactMap { $0 }
}

/// FLOPs of one image's forward (a multiply-add counts 2): the patch embedding, and per block
/// qkv, attention (Q Kᵀ and P V over all heads: 2 · 2 · N² · D), proj, and the MLP (fc1, fc2)
/// or SwiGLU (w12, w3). LayerNorm, softmax, GELU and additions are not counted.
func forwardFLOPs(_ c: Config, height: Int, width: Int) -> Double {
    let p = c.patchSize, patches = Double((height / p) * (width / p))
    let n = patches + 1 + Double(c.registerTokens), d = Double(c.embedDim), h = Double(c.ffnHidden)
    let patchEmbed = 2 * patches * Double(c.inChannels * p * p) * d
    let ffn = c.ffn == .swiglu ? 2 * n * d * 2 * h + 2 * n * h * d : 2 * n * d * h * 2
    let block = 2 * n * d * 3 * d + 4 * n * n * d + 2 * n * d * d + ffn
    return patchEmbed + Double(c.depth) * block
}

/// The process's peak resident set so far, in MB (2^20 bytes; Linux reports KiB, macOS bytes).
func peakResidentMegabytes() -> Double {
    var usage = rusage()
    #if os(Linux)
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_maxrss) / 1024
    #else
    getrusage(RUSAGE_SELF, &usage)
    return Double(usage.ru_maxrss) / 1_048_576
    #endif
}
