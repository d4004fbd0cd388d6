import Datasets
import Formats
import Foundation
import Kernels
import TensorStore
import TestSupport
import XCTest
@testable import Training

/// The linear head, cross-entropy, SGD and AdamW with the cosine schedule against PyTorch
/// (Fixtures/finetune/head.safetensors, made by Scripts/fixtures/finetune_ref.py).
final class FinetuneHeadTests: XCTestCase {
    struct Reference {
        let store: TensorStore
        let x: [Float]
        let labels: [Int]
        let rows = 12, features = 16, classes = 5, batch = 4, steps = 6

        init() throws {
            store = try Safetensors.read(path: fixturePath("finetune/head.safetensors"))
            x = store["x"]!.floats()
            labels = try LabelFile.labels(store["labels"]!, name: "labels")
        }

        func floats(_ name: String) -> [Float] { store[name]?.floats() ?? [] }

        func freshHead() -> LinearHead {
            let head = LinearHead(classes: classes, features: features)
            head.weight.update(from: floats("weight0"), count: classes * features)
            head.bias.update(from: floats("bias0"), count: classes)
            return head
        }
    }

    /// A float64 tensor's values (torch's Python floats, kept exact).
    func doubles(_ t: Tensor?) throws -> [Double] {
        let t = try XCTUnwrap(t)
        XCTAssertEqual(t.dtype, .f64)
        return t.withContiguousBytes { raw in (0..<(raw.count / 8)).map { raw.loadUnaligned(fromByteOffset: 8 * $0, as: Double.self) } }
    }

    func assertClose(_ a: [Float], _ b: [Float], tolerance: Float, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, tolerance, "\(what): max |diff| \(worst)", file: file, line: line)
    }

    func testCrossEntropyLossAndGradientsMatchTorch() throws {
        let r = try Reference()
        let head = r.freshHead()
        let grads = ParameterBlock(layout: head.parameters.layout)
        var logits = [Float](repeating: 0, count: r.rows * r.classes)
        var dlogits = logits, dx = r.x
        let result = r.x.withUnsafeBufferPointer { x in
            logits.withUnsafeMutableBufferPointer { l in
                head.forward(x.baseAddress!, rows: r.rows, logits: l.baseAddress!, parallelism: .serial)
            }
            let res = r.labels.withUnsafeBufferPointer { y in
                CrossEntropy.evaluate(logits: logits, labels: y.baseAddress!, rows: r.rows, classes: r.classes,
                                      dlogits: &dlogits)
            }
            dlogits.withUnsafeBufferPointer { d in
                dx.withUnsafeMutableBufferPointer { dxp in
                    head.backward(x.baseAddress!, dlogits: d.baseAddress!, rows: r.rows, grads: grads,
                                  dinput: dxp.baseAddress!, parallelism: .serial)
                }
            }
            return res
        }
        assertClose(logits, r.floats("ce.logits"), tolerance: 1e-5, "logits")
        XCTAssertEqual(result.loss, try doubles(r.store["ce.loss"])[0], accuracy: 1e-5)
        assertClose(grads.array("weight"), r.floats("ce.grad_weight"), tolerance: 1e-5, "dL/dweight")
        assertClose(grads.array("bias"), r.floats("ce.grad_bias"), tolerance: 1e-5, "dL/dbias")
        assertClose(dx, r.floats("ce.grad_x"), tolerance: 1e-5, "dL/dx")
        let predictions = CrossEntropy.predictions(logits: logits, rows: r.rows, classes: r.classes)
        XCTAssertEqual(result.correct, zip(predictions, r.labels).filter { $0 == $1 }.count)
    }

    func testSGDWithMomentumAndCosineScheduleMatchesTorch() throws {
        try checkSteps(.sgd(momentum: 0.9), lr: 0.5, weightDecay: 1e-3, prefix: "sgd")
    }

    func testAdamWWithCosineScheduleMatchesTorch() throws {
        try checkSteps(.adamw, lr: 0.02, weightDecay: 0.05, prefix: "adamw")
    }

    private func checkSteps(_ kind: FinetuneOptimizerKind, lr: Double, weightDecay: Double, prefix: String) throws {
        let r = try Reference()
        let head = r.freshHead()
        let schedule = FinetuneLRSchedule(base: lr, totalSteps: r.steps)
        let optimizer = FinetuneOptimizer(kind, modules: [head.parameters.layout], weightDecay: weightDecay)
        let groups = [FinetuneOptimizer.headGroups(head.parameters.layout)]
        let grads = ParameterBlock(layout: head.parameters.layout)
        let torchLRs = try doubles(r.store["\(prefix).lrs"])
        let torchLosses = try doubles(r.store["\(prefix).losses"])
        for t in 0..<r.steps {
            let rows = (0..<r.batch).map { (t * r.batch + $0) % r.rows }
            let x = rows.flatMap { r.x[($0 * r.features)..<(($0 + 1) * r.features)] }
            let y = rows.map { r.labels[$0] }
            grads.zero()
            let loss = head.trainStep(x: x, labels: y, grads: grads, parallelism: .serial)
            XCTAssertEqual(loss.loss, torchLosses[t], accuracy: 1e-5, "loss of step \(t)")
            XCTAssertEqual(schedule.value(step: t), torchLRs[t], accuracy: 1e-9 * lr, "lr of step \(t)")
            optimizer.step(params: [head.parameters], grads: [grads], groups: groups, lr: schedule.value(step: t))
        }
        assertClose(head.parameters.array("weight"), r.floats("\(prefix).weight"), tolerance: 1e-5, "\(prefix) weight")
        assertClose(head.parameters.array("bias"), r.floats("\(prefix).bias"), tolerance: 1e-5, "\(prefix) bias")
    }

    func testHeadFileRoundTrips() throws {
        let r = try Reference()
        let head = r.freshHead()
        let dir = makeTemporaryDirectory("finetune-head")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/head.safetensors"
        try Safetensors.write(try head.store(classNames: ["a", "b", "c", "d", "é"], extra: ["features": "cls"]), to: path)
        let (back, names) = try LinearHead.load(try Safetensors.read(path: path), file: path)
        XCTAssertEqual(names, ["a", "b", "c", "d", "é"])
        XCTAssertEqual(back.parameters.array("weight"), head.parameters.array("weight"))
        XCTAssertEqual(back.parameters.array("bias"), head.parameters.array("bias"))
    }
}
