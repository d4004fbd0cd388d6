@testable import DINOv2
import Formats
import Kernels
import TensorStore
import TestSupport
import XCTest

/// A bf16 checkpoint at `Precision.bf16` has its linear weights packed straight from the file's
/// bits (`WeightBinder.bindLinear`): no Float32 copy of them is made, in memory or streamed, and
/// the outputs are bit for bit those of the same weights widened to Float32 and rounded back at
/// load (what every other file goes through). f32 files, and bf16 files at f32, are widened.
final class BF16WeightLoadingTests: XCTestCase {
    /// DINOv2 MLP with registers, DINOv2 SwiGLU (`w12`), DINOv3 SwiGLU (`w1`, `w2` stacked at
    /// load) and DINOv3 MLP with the untied cls norm.
    static let shapes: [(String, RandomWeights.VariantShape)] = [
        ("dinov2 mlp", .init(dim: 64, depth: 2, hidden: 256, swiglu: false, registers: 4, heads: 4)),
        ("dinov2 swiglu", .init(dim: 64, depth: 2, hidden: 96, swiglu: true, registers: 0, heads: 4)),
        ("dinov3 swiglu", .init(dim: 64, depth: 2, hidden: 96, swiglu: true, registers: 4, family: .dinov3, heads: 4)),
        ("dinov3 mlp untied", .init(dim: 64, depth: 2, hidden: 128, swiglu: false, registers: 4, family: .dinov3,
                                    qkvBias: false, untiedNorm: true, heads: 4)),
    ]

    /// The elements of the linear weights a model of `c` packs, counted from the config.
    static func linearElements(_ c: Config) -> Int {
        let d = c.embedDim, fc1Rows = c.ffn == .swiglu ? 2 * c.ffnHidden : c.ffnHidden
        let block = 3 * d * d + d * d + fc1Rows * d + d * c.ffnHidden
        return c.depth * block + d * c.inChannels * c.patchSize * c.patchSize
    }

    /// `body`'s result and what the loader did with linear weights while it ran.
    func tallied<R>(_ body: () throws -> R) rethrows -> (R, widened: Int, bf16: Int) {
        let tally = BindingTally()
        let r = try BindingTally.$current.withValue(tally) { try body() }
        return (r, tally.counts.widened, tally.counts.bf16)
    }

    /// The bf16 file of `shape` written and read back (mapped), and the same values as Float32.
    func stores(_ shape: RandomWeights.VariantShape, in dir: String, _ name: String) throws -> (bf16: TensorStore, f32: TensorStore) {
        let path = dir + "/\(name.replacingOccurrences(of: " ", with: "-")).safetensors"
        try Safetensors.write(try RandomWeights.hubStore(shape).converted(to: .bf16), to: path)
        let bf16 = try loadWeights(path: path)
        XCTAssertEqual(bf16[HubNames.patchWeight]?.dtype, .bf16)
        return (bf16, try bf16.converted(to: .f32))
    }

    /// Every public output of `a` and `b` on `x`, bit for bit.
    func assertSameOutputs(_ a: Model, _ b: Model, _ x: Tensor, _ label: String) throws {
        let fa = try a.forwardFeatures(x), fb = try b.forwardFeatures(x)
        for (name, ta, tb) in [("cls", fa.clsToken, fb.clsToken), ("registers", fa.regTokens, fb.regTokens),
                               ("patches", fa.patchTokens, fb.patchTokens), ("prenorm", fa.prenorm, fb.prenorm)] {
            XCTAssertTrue(ta.bitwiseEqual(tb), "\(label): \(name)")
        }
        XCTAssertTrue(try a(x).bitwiseEqual(try b(x)), "\(label): forward")
        let depth = a.config.depth
        let la = try a.intermediateLayers(x, n: .indices(Array(0..<depth)), returnClassToken: true)
        let lb = try b.intermediateLayers(x, n: .indices(Array(0..<depth)), returnClassToken: true)
        for (oa, ob) in zip(la, lb) {
            XCTAssertTrue(oa.patchTokens.bitwiseEqual(ob.patchTokens), "\(label): block \(oa.blockIndex) patches")
        }
        XCTAssertTrue(try a.lastBlockAttention(x).probabilities.bitwiseEqual(try b.lastBlockAttention(x).probabilities),
                      "\(label): last block attention")
    }

    func testABF16FileAtBF16GivesTheOutputsOfItsFloat32Widening() throws {
        let dir = makeTemporaryDirectory("dinokit-bf16load")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let threads = Parallelism(threads: 2)
        for (name, shape) in Self.shapes {
            let (bf16, f32) = try stores(shape, in: dir, name)
            let patch = shape.family == .dinov3 ? 16 : 14
            let x = try SyntheticInput.tensor(seed: 11, shape: [2, 3, 2 * patch, 3 * patch])
            let (direct, widenedByDirect, packedByDirect) = try tallied { try Model(store: bf16, precision: .bf16, parallelism: threads) }
            let (viaF32, widenedViaF32, packedViaF32) = try tallied { try Model(store: f32, precision: .bf16, parallelism: threads) }
            let linear = Self.linearElements(direct.config)
            XCTAssertEqual(widenedByDirect, 0, "\(name): a bf16 file's linear weights widened to Float32")
            XCTAssertEqual(packedByDirect, linear, name)
            XCTAssertEqual(widenedViaF32, linear, name)
            XCTAssertEqual(packedViaF32, 0, name)
            try assertSameOutputs(direct, viaF32, x, "\(name) in memory")

            // Streamed: the stem's patch embedding at load, each block's weights in each forward.
            let (streamed, widenedAtLoad, packedAtLoad) = try tallied {
                try Model(store: bf16, precision: .bf16, parallelism: threads, loading: .streamed)
            }
            let c = streamed.config
            XCTAssertEqual(widenedAtLoad, 0, name)
            XCTAssertEqual(packedAtLoad, c.embedDim * c.inChannels * c.patchSize * c.patchSize, name)
            let (_, widenedInForward, packedInForward) = try tallied { try streamed(x) }
            XCTAssertEqual(widenedInForward, 0, "\(name): a streamed block's linear weights widened to Float32")
            XCTAssertEqual(packedInForward, linear - packedAtLoad, name)
            try assertSameOutputs(direct, streamed, x, "\(name) streamed")

            // At f32 the bf16 file is widened, and the precision is in effect: bf16 outputs differ.
            let (exact, widenedAtF32, _) = try tallied { try Model(store: bf16, parallelism: threads) }
            XCTAssertEqual(widenedAtF32, linear, name)
            XCTAssertFalse(try exact(x).bitwiseEqual(try direct(x)), name)
        }
    }
}
