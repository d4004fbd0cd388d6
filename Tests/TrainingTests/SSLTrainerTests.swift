import Foundation
import TestSupport
@testable import Training
import XCTest

/// The trainer beyond the debug states: stochastic depth in a whole step, and reuse of its
/// buffers from step to step.
final class SSLTrainerTests: XCTestCase {
    func state() throws -> DebugState { try DebugState(directory: fixturePath("sslstep/centering-shared")) }

    /// With drop path (subset scheme) the student's forward differs, and steps still run end to
    /// end with finite losses (the gradients themselves are checked in ModelFiniteDifferenceTests).
    func testStepWithStochasticDepth() throws {
        let s = try state()
        let trainer = SSLTrainer(model: try SSLModel(config: s.config, store: s.initial, file: "initial"), parallelism: .serial)
        trainer.stochasticDepth = StochasticDepth(rate: 0.4, seed: 11)
        var totals: [Double] = []
        for t in 0..<s.config.steps {
            let terms = try trainer.step(try s.batch(step: t), hyper: s.config.hyperparameters)
            XCTAssertTrue(terms.named.allSatisfy { $0.1.isFinite }, "\(terms)")
            totals.append(terms.total)
        }
        XCTAssertNotEqual(totals[0], s.expected[0].total, "drop path changed nothing")
        XCTAssertEqual(trainer.model.dinoCenter.values.count, s.config.dinoHead.outDim)
    }

    /// Steps after the first reuse the workspace: its size does not change once every buffer has
    /// reached the largest masked-patch count.
    func testWorkspaceIsReused() throws {
        let s = try state()
        let trainer = SSLTrainer(model: try SSLModel(config: s.config, store: s.initial, file: "initial"), parallelism: .serial)
        let batches = try (0..<s.config.steps).map { try s.batch(step: $0) }
        for b in batches { try trainer.step(b, hyper: s.config.hyperparameters) }
        let size = trainer.workspaceBytes
        for b in batches { try trainer.step(b, hyper: s.config.hyperparameters) }
        XCTAssertEqual(trainer.workspaceBytes, size)
        XCTAssertGreaterThan(size, 0)
    }
}
