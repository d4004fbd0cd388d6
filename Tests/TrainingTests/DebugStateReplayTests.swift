import Foundation
import TestSupport
import Training
import XCTest

/// `train-step` (the library function) on every committed debug state under Fixtures/sslstep:
/// three official DINOv2 iterations each, every loss term, every step-0 gradient and every final
/// tensor compared with PyTorch's (Scripts/make-sslstep).
final class DebugStateReplayTests: XCTestCase {
    static let states = ["centering-shared", "sinkhorn-separate", "registers-centering", "swiglu-sinkhorn",
                         "interp-global-offset", "interp-global-registers"]

    func replay(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let state = try DebugState(directory: fixturePath("sslstep/" + name))
        let result = try DebugStateReplay.run(state, parallelism: .serial)
        let r = result.report
        let lossErr = r.steps.map(\.maxRelErr).max() ?? .infinity
        print("\(kernelPathLabel) \(name): loss max rel err \(lossErr), grads max rel err \(r.grads.maxRelErr) (\(r.grads.worst)), final max abs err \(r.final.maxAbsErr) (\(r.final.worst))")
        let checked = r.finalComparisons.max { $0.maxCheckedErr < $1.maxCheckedErr }
        print("  final max error where the tight bound applies: \(checked?.maxCheckedErr ?? 0) (\(checked?.name ?? "")), bound \(1e-6 + 0.05 * state.config.optim.lr * Double(state.config.steps))")
        for f in r.failures { print("  FAIL \(f)") }
        XCTAssertTrue(r.pass, "\(name): " + r.failures.prefix(8).joined(separator: "; "), file: file, line: line)
        XCTAssertEqual(r.steps.count, state.config.steps, file: file, line: line)
    }

    func testCenteringSharedHead() throws { try replay("centering-shared") }
    func testSinkhornSeparateHead() throws { try replay("sinkhorn-separate") }
    func testRegistersCentering() throws { try replay("registers-centering") }
    func testSwiGLUSinkhorn() throws { try replay("swiglu-sinkhorn") }
    /// Global crops on a grid other than the table's: 5×5 → 4×4 with the +0.1 scale factor.
    func testGlobalCropsResampledWithOffset() throws { try replay("interp-global-offset") }
    /// Global crops on a grid other than the table's: 3×3 → 4×4 by size, antialiased, registers.
    func testGlobalCropsResampledAntialiased() throws { try replay("interp-global-registers") }

    /// Every committed state is covered by a test above.
    func testEveryCommittedStateIsReplayed() throws {
        let found = try FileManager.default.contentsOfDirectory(atPath: fixturePath("sslstep"))
            .filter { FileManager.default.fileExists(atPath: fixturePath("sslstep/\($0)/config.json")) }
        XCTAssertEqual(Set(found), Set(Self.states))
    }
}
