import DINOv2
import Foundation
import Kernels
import TensorStore
import XCTest

// TEMPORARY (not committed): rough timings for the report.
final class ZZTimingScratch: XCTestCase {
    func testTiming() throws {
        guard ProcessInfo.processInfo.environment["DINOKIT_TIMING"] != nil else { return }
        let p = Parallelism(threads: 2)
        let tiny = try Model(store: InputValidationTests.tinyStore(), numHeads: 2, parallelism: p)
        let x = try SyntheticInput.tensor(seed: 1, shape: [1, 3, 224, 224])
        let ws = Workspace()
        _ = try tiny(x, workspace: ws)
        var t0 = Date()
        for _ in 0..<5 { _ = try tiny.forwardFeatures(x, workspace: ws) }
        print("TIMING tiny 224 forwardFeatures: \(Date().timeIntervalSince(t0) / 5 * 1000) ms")

        // vits14 shapes, synthetic weights scaled down.
        var store = try ConfigDetectionTests.shapeOnlyStore(dim: 384, depth: 12, swiglu: false, registers: 0)
        var seed: UInt32 = 1
        for name in store.names {
            let t = store[name]!
            var v = SyntheticInput.values(seed: seed, count: t.elementCount)
            for i in v.indices { v[i] *= 0.02 }
            if name.hasSuffix("norm1.weight") || name.hasSuffix("norm2.weight") || name == "norm.weight" { for i in v.indices { v[i] += 1 } }
            store[name] = try Tensor(shape: t.shape, floats: v)
            seed &+= 1
        }
        t0 = Date()
        let s = try Model(store: store, parallelism: p)
        print("TIMING vits14 load: \(Date().timeIntervalSince(t0) * 1000) ms")
        _ = try s(x, workspace: ws)
        t0 = Date()
        for _ in 0..<3 { _ = try s.forwardFeatures(x, workspace: ws) }
        print("TIMING vits14 224 b1 forwardFeatures: \(Date().timeIntervalSince(t0) / 3 * 1000) ms")
        let x8 = try SyntheticInput.tensor(seed: 2, shape: [8, 3, 224, 224])
        _ = try s(x8, workspace: ws)
        t0 = Date()
        for _ in 0..<2 { _ = try s.forwardFeatures(x8, workspace: ws) }
        print("TIMING vits14 224 b8 forwardFeatures: \(Date().timeIntervalSince(t0) / 2 / 8 * 1000) ms/img")
    }
}
