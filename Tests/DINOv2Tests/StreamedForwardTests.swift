import DINOv2
import Formats
import Kernels
import TensorStore
import TestSupport
import XCTest

/// A streamed model (`Model.Loading.streamed`: blocks bound one at a time in each forward) gives
/// the in-memory model's outputs bit for bit, for both families and every output, and holds
/// about one block's weights at a time.
final class StreamedForwardTests: XCTestCase {
    /// Both loadings of `store`, on `threads` threads.
    static func models(_ store: TensorStore, numHeads: Int? = nil, threads: Int = 2) throws -> (inMemory: Model, streamed: Model) {
        let parallelism = Parallelism(threads: threads)
        let inMemory = try Model(store: store, numHeads: numHeads, parallelism: parallelism)
        let streamed = try Model(store: store, numHeads: numHeads, parallelism: parallelism, loading: .streamed)
        XCTAssertEqual(inMemory.loading, .inMemory)
        XCTAssertEqual(streamed.loading, .streamed)
        XCTAssertTrue(streamed.parameters.blocks.isEmpty, "a streamed model keeps no block")
        return (inMemory, streamed)
    }

    /// Every public output of `a` and `b` on `x`, compared bit for bit.
    func assertSameOutputs(_ a: Model, _ b: Model, _ x: Tensor, masks: Tensor? = nil, _ label: String,
                           file: StaticString = #filePath, line: UInt = #line) throws {
        let fa = try a.forwardFeatures(x, masks: masks), fb = try b.forwardFeatures(x, masks: masks)
        for (name, ta, tb) in [("cls", fa.clsToken, fb.clsToken), ("registers", fa.regTokens, fb.regTokens),
                               ("patches", fa.patchTokens, fb.patchTokens), ("prenorm", fa.prenorm, fb.prenorm)] {
            XCTAssertTrue(ta.bitwiseEqual(tb), "\(label): forwardFeatures \(name)", file: file, line: line)
        }
        XCTAssertTrue(try a(x, masks: masks).bitwiseEqual(try b(x, masks: masks)), "\(label): callAsFunction", file: file, line: line)
        guard masks == nil else { return }
        let depth = a.config.depth
        for (norm, reshape) in [(true, false), (false, true)] {
            let la = try a.intermediateLayers(x, n: .indices(Array(0..<depth)), reshape: reshape, returnClassToken: true, norm: norm)
            let lb = try b.intermediateLayers(x, n: .indices(Array(0..<depth)), reshape: reshape, returnClassToken: true, norm: norm)
            XCTAssertEqual(la.map(\.blockIndex), lb.map(\.blockIndex), file: file, line: line)
            for (oa, ob) in zip(la, lb) {
                XCTAssertTrue(oa.patchTokens.bitwiseEqual(ob.patchTokens), "\(label): block \(oa.blockIndex) patches, norm \(norm)",
                              file: file, line: line)
                XCTAssertTrue(try XCTUnwrap(oa.classToken).bitwiseEqual(try XCTUnwrap(ob.classToken)),
                              "\(label): block \(oa.blockIndex) cls, norm \(norm)", file: file, line: line)
            }
        }
        // The last n blocks: only blocks up to the last one selected are bound.
        let na = try a.intermediateLayers(x, n: 1), nb = try b.intermediateLayers(x, n: 1)
        XCTAssertTrue(try XCTUnwrap(na.first).patchTokens.bitwiseEqual(try XCTUnwrap(nb.first).patchTokens), label, file: file, line: line)
        let pa = try a.lastBlockAttention(x), pb = try b.lastBlockAttention(x)
        XCTAssertTrue(pa.probabilities.bitwiseEqual(pb.probabilities), "\(label): last block attention", file: file, line: line)
    }

    func testTinyDINOv2FixturesGiveTheSameBits() throws {
        for name in ["tiny-plain", "tiny-reg", "tiny-swiglu"] {
            let store = try InputValidationTests.tinyStore(name)
            // Images of 28x42 (7 tokens + registers) pass together; at 224 on one thread one at a
            // time, so a batch of 3 is 3 passes, each through every block before the next block.
            let (one, streamedOne) = try Self.models(store, numHeads: 2, threads: 1)
            try assertSameOutputs(one, streamedOne, try SyntheticInput.tensor(seed: 4, shape: [3, 3, 224, 224]), "\(name) 224, 1 thread")
            let (a, b) = try Self.models(store, numHeads: 2)
            try assertSameOutputs(a, b, try SyntheticInput.tensor(seed: 3, shape: [2, 3, 28, 42]), "\(name) small")
            let masks = try Tensor(dtype: .bool, shape: [2, 6], bytes: [UInt8]([1, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 1]).withUnsafeBytes { $0 })
            try assertSameOutputs(a, b, try SyntheticInput.tensor(seed: 5, shape: [2, 3, 28, 42]), masks: masks, "\(name) masked")
        }
    }

    /// DINOv3 shapes: MLP, SwiGLU (separate w1/w2), and the 7B's untied cls norm without qkv bias.
    func testRandomDINOv3ModelsGiveTheSameBits() throws {
        let shapes: [(String, RandomWeights.VariantShape)] = [
            ("mlp", .init(dim: 64, depth: 3, hidden: 256, swiglu: false, registers: 4, family: .dinov3, heads: 4)),
            ("swiglu", .init(dim: 64, depth: 3, hidden: 96, swiglu: true, registers: 4, family: .dinov3, heads: 4)),
            ("untied, no qkv bias", .init(dim: 64, depth: 3, hidden: 128, swiglu: true, registers: 4, family: .dinov3,
                                          qkvBias: false, untiedNorm: true, heads: 4)),
        ]
        for (name, shape) in shapes {
            let store = try RandomWeights.hubStore(shape)
            let (a, b) = try Self.models(store)
            XCTAssertEqual(a.config.family, .dinov3)
            XCTAssertEqual(a.parameters.classNorm != nil, shape.untiedNorm, name)
            XCTAssertEqual(a.config.architecture.qkvBias, shape.qkvBias, name)
            try assertSameOutputs(a, b, try SyntheticInput.tensor(seed: 6, shape: [3, 3, 32, 48]), name)
            try assertSameOutputs(a, b, try SyntheticInput.tensor(seed: 7, shape: [2, 3, 160, 160]), "\(name) 160")
        }
    }

    /// A deep model whose weights are far over a 16 MB budget: the automatic loading streams it,
    /// the outputs are the in-memory ones, and the weights held at once (the stem and one block)
    /// stay under the budget.
    func testADeepModelOverTheBudgetIsStreamedWithinIt() throws {
        let budget = 16 << 20
        let store = try RandomWeights.hubStore(.init(dim: 256, depth: 24, hidden: 1024, swiglu: false, registers: 4))
        XCTAssertGreaterThan(Model.inMemoryWeightBytes(hubStore: store), 4 * budget)
        let streamed = try Model(store: store, parallelism: .init(threads: 2), loading: .automatic(maxWeightBytes: budget))
        XCTAssertEqual(streamed.loading, .streamed)
        XCTAssertEqual(try Model(store: store, parallelism: .init(threads: 2), loading: .automatic(maxWeightBytes: 1 << 40)).loading,
                       .inMemory)
        let inMemory = try Model(store: store, parallelism: .init(threads: 2))
        let x = try SyntheticInput.tensor(seed: 8, shape: [2, 3, 28, 42])
        let fa = try inMemory.forwardFeatures(x), fb = try streamed.forwardFeatures(x)
        XCTAssertTrue(fa.prenorm.bitwiseEqual(fb.prenorm))
        XCTAssertTrue(fa.patchTokens.bitwiseEqual(fb.patchTokens))
        XCTAssertTrue(fa.clsToken.bitwiseEqual(fb.clsToken))
        XCTAssertTrue(try inMemory(x).bitwiseEqual(try streamed(x)))
        let la = try inMemory.intermediateLayers(x, n: [5, 23], returnClassToken: true)
        let lb = try streamed.intermediateLayers(x, n: [5, 23], returnClassToken: true)
        for (oa, ob) in zip(la, lb) { XCTAssertTrue(oa.patchTokens.bitwiseEqual(ob.patchTokens), "block \(oa.blockIndex)") }
        let peak = try XCTUnwrap(streamed.peakStreamedWeightBytes)
        print(String(format: "peak weight bytes held: %.1f MB of a %.1f MB budget (%.1f MB in memory)", Double(peak) / 1e6,
                     Double(budget) / 1e6, Double(Model.inMemoryWeightBytes(hubStore: store)) / 1e6))
        XCTAssertLessThan(peak, budget)
        XCTAssertNil(inMemory.peakStreamedWeightBytes)
    }

    /// Every block's names and shapes are checked when a streamed model is made, not halfway
    /// through its first forward.
    func testAStreamedModelChecksEveryBlockAtLoad() throws {
        var store = try InputValidationTests.tinyStore("tiny-plain")
        store.remove("blocks.1.mlp.fc2.bias")
        XCTAssertThrowsError(try Model(store: store, numHeads: 2, loading: .streamed)) { error in
            XCTAssertEqual(error as? DINOv2Error, .missingWeight(name: "blocks.1.mlp.fc2.bias", expected: "(32,)"))
        }
    }
}
