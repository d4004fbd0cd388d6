import DINOv2
import Foundation
import Kernels
import TensorStore
import TestSupport
import XCTest

/// The fused inference pipeline on every kernel path the CPU has: each tiny golden set passes the
/// verifier on the AVX2 and portable paths too (GoldenSetVerificationTests covers the default
/// path), and the outputs do not depend on the thread count — rows and query blocks are split
/// between threads, never the arithmetic within a row.
final class FastForwardTests: XCTestCase {
    func testGoldenSetsPassOnEveryKernelPath() throws {
        let supported = KernelDispatch.supported
        for path in KernelPath.allCases where path < supported {
            try KernelDispatch.with(path) { active in
                XCTAssertEqual(active, path)
                for dir in try GoldenSetVerificationTests.goldenDirectories() {
                    let set = try GoldenSet.load(directory: dir)
                    let report = try Verifier.run(set, parallelism: .init(threads: 2))
                    let name = (dir as NSString).lastPathComponent
                    for c in report.cases {
                        for o in c.outputs {
                            XCTAssertTrue(o.pass, "\(path.rawValue) \(name)/\(c.name)/\(o.key): max abs err \(o.maxAbsErr ?? .nan)")
                        }
                    }
                    print("\(path.rawValue) \(name): \(report.pass ? "pass" : "FAIL")")
                }
            }
        }
    }

    /// Also covers images passing through the blocks in groups: at 224 (261 tokens with registers)
    /// one thread takes the three images one at a time, five threads all together.
    func testOutputsDoNotDependOnTheThreadCount() throws {
        var model = try InputValidationTests.tinyModel("tiny-reg")
        let x = try SyntheticInput.tensor(seed: 9, shape: [3, 3, 224, 224])
        model.parallelism = .init(threads: 1)
        let one = try model.forwardFeatures(x)
        let oneLayers = try model.intermediateLayers(x, n: [0, 1], returnClassToken: true)
        for threads in [2, 3, 5] {
            model.parallelism = .init(threads: threads)
            let f = try model.forwardFeatures(x)
            XCTAssertTrue(f.prenorm.bitwiseEqual(one.prenorm), "\(threads) threads")
            XCTAssertTrue(f.patchTokens.bitwiseEqual(one.patchTokens), "\(threads) threads")
            XCTAssertTrue(f.clsToken.bitwiseEqual(one.clsToken), "\(threads) threads")
            let layers = try model.intermediateLayers(x, n: [0, 1], returnClassToken: true)
            for (a, b) in zip(layers, oneLayers) {
                XCTAssertTrue(a.patchTokens.bitwiseEqual(b.patchTokens), "\(threads) threads, block \(a.blockIndex)")
                XCTAssertTrue(try XCTUnwrap(a.classToken).bitwiseEqual(try XCTUnwrap(b.classToken)))
            }
        }
    }
}
