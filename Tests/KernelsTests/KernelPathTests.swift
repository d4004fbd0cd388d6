import Kernels
import TensorStore
import XCTest

/// Path selection, and the elementwise kernels of every path (the SIMD ones use their own exp
/// and erfc) against the PyTorch fixtures that ActivationTests, SoftmaxTests and LayerNormTests
/// check on the default path.
final class KernelPathTests: XCTestCase {
    func testSelectionIsClampedToWhatTheCPUSupports() {
        let supported = KernelDispatch.supported
        let before = KernelDispatch.active
        KernelDispatch.with(.avx512) { XCTAssertEqual($0, min(.avx512, supported)) }
        KernelDispatch.with(.scalar) { XCTAssertEqual($0, .scalar) }
        XCTAssertEqual(KernelDispatch.active, before)
        print("kernel paths: supported \(supported.rawValue), active \(before.rawValue)")
    }

    /// A machine without AVX-512, without AVX2, or whose OS does not save the wider registers gets
    /// the path it can run, with no setting: the dispatcher's rule on the CPUs people have.
    func testCPUsWithoutAVX512OrAVX2GetTheirPathAutomatically() {
        var zen4 = CPUFeatures()  // also Skylake-X, Ice Lake, Sapphire Rapids
        (zen4.fma, zen4.osxsave, zen4.avx, zen4.avx2) = (true, true, true, true)
        (zen4.avx512f, zen4.avx512dq, zen4.avx512vl, zen4.xcr0) = (true, true, true, 0xE7)
        XCTAssertEqual(KernelDispatch.path(for: zen4), .avx512)

        var noZMMState = zen4  // AVX-512 in CPUID but the OS saves only XMM/YMM
        noZMMState.xcr0 = 0x7
        XCTAssertEqual(KernelDispatch.path(for: noZMMState), .avx2)

        var haswell = zen4  // Haswell, Zen 1-3, Alder Lake: AVX2 + FMA, no AVX-512
        (haswell.avx512f, haswell.avx512dq, haswell.avx512vl, haswell.xcr0) = (false, false, false, 0x7)
        XCTAssertEqual(KernelDispatch.path(for: haswell), .avx2)

        var knightsLanding = zen4  // AVX-512F without DQ/VL: not what the AVX-512 kernels use
        (knightsLanding.avx512dq, knightsLanding.avx512vl) = (false, false)
        XCTAssertEqual(KernelDispatch.path(for: knightsLanding), .avx2)

        var sandyBridge = haswell  // AVX without AVX2/FMA
        (sandyBridge.avx2, sandyBridge.fma) = (false, false)
        XCTAssertEqual(KernelDispatch.path(for: sandyBridge), .scalar)

        var noOSSupport = zen4  // CPU has it all, the OS enables no AVX state
        noOSSupport.osxsave = false
        XCTAssertEqual(KernelDispatch.path(for: noOSSupport), .scalar)
        noOSSupport = zen4
        noOSSupport.xcr0 = 0x3
        XCTAssertEqual(KernelDispatch.path(for: noOSSupport), .scalar)

        XCTAssertEqual(KernelDispatch.path(for: CPUFeatures()), .scalar)
    }

    /// `DINOKIT_KERNELS` (as Scripts/test sets it for its per-path stages) really selects the path,
    /// clamped to what the CPU has.
    func testTheEnvironmentSelectsThePath() {
        guard let wanted = ProcessInfo.processInfo.environment["DINOKIT_KERNELS"].flatMap(KernelPath.init(rawValue:)) else {
            print("DINOKIT_KERNELS not set: the best supported path, \(KernelDispatch.supported.rawValue), is active")
            XCTAssertEqual(KernelDispatch.active, KernelDispatch.supported)
            return
        }
        XCTAssertEqual(KernelDispatch.active, min(wanted, KernelDispatch.supported))
    }

    func testEveryPathMatchesTheActivationFixtures() throws {
        for op in ["gelu", "silu"] {
            let cases = try KernelFixtures.cases(op: op)
            XCTAssertFalse(cases.isEmpty)
            try KernelPaths.each { path in
                for c in cases {
                    let x = try c.tensor("input").floats(), expected = try c.tensor("output").floats()
                    var out = [Float](repeating: 0, count: x.count)
                    if op == "gelu" { geluForward(out: &out, inp: x, count: x.count) } else { siluForward(out: &out, inp: x, count: x.count) }
                    let err = KernelFixtures.maxAbsError(out, expected)
                    print("\(path.rawValue) \(op) \(c.name): max abs error \(err)")
                    XCTAssertLessThanOrEqual(err, 1e-6, "\(path.rawValue) \(c.name)")
                }
            }
        }
    }

    func testEveryPathMatchesTheSoftmaxFixtures() throws {
        let cases = try KernelFixtures.cases(op: "softmax")
        XCTAssertFalse(cases.isEmpty)
        try KernelPaths.each { path in
            for c in cases {
                let x = try c.tensor("input"), expected = try c.tensor("output").floats()
                let cols = x.shape.dims.last ?? 1
                let xs = x.floats()
                var out = [Float](repeating: 0, count: xs.count)
                softmaxForward(out: &out, inp: xs, rows: xs.count / cols, cols: cols, parallelism: Parallelism(threads: 2))
                let err = KernelFixtures.maxAbsError(out, expected)
                print("\(path.rawValue) softmax \(c.name): max abs error \(err)")
                XCTAssertLessThanOrEqual(err, 1e-6, "\(path.rawValue) \(c.name)")
            }
        }
    }

    func testEveryPathMatchesTheLayerNormFixtures() throws {
        let cases = try KernelFixtures.cases(op: "layer_norm")
        XCTAssertFalse(cases.isEmpty)
        try KernelPaths.each { path in
            for c in cases {
                let x = try c.tensor("input").floats(), w = try c.tensor("weight").floats(), b = try c.tensor("bias").floats()
                let expected = try c.tensor("output").floats()
                let cols = w.count, rows = x.count / cols
                var out = [Float](repeating: 0, count: x.count)
                var mean = [Float](repeating: 0, count: rows), rstd = mean
                layerNormForward(out: &out, mean: &mean, rstd: &rstd, inp: x, weight: w, bias: b, rows: rows, cols: cols,
                                 eps: Float(c.double("eps") ?? 1e-6))
                let err = KernelFixtures.maxAbsError(out, expected)
                print("\(path.rawValue) layer_norm \(c.name): max abs error \(err)")
                XCTAssertLessThanOrEqual(err, 1e-5, "\(path.rawValue) \(c.name)")
                // The statistics a backward reads: the row mean, and 1/sqrt(var + eps), in Double.
                for r in 0..<rows {
                    let row = x[(r * cols)..<((r + 1) * cols)].map(Double.init)
                    let m = row.reduce(0, +) / Double(cols)
                    let v = row.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(cols)
                    XCTAssertEqual(Double(mean[r]), m, accuracy: 1e-6 * max(1, abs(m)), "\(path.rawValue) \(c.name) mean")
                    XCTAssertEqual(Double(rstd[r]), 1 / (v + 1e-6).squareRoot(), accuracy: 1e-6 / (v + 1e-6).squareRoot(),
                                   "\(path.rawValue) \(c.name) rstd")
                }
            }
        }
    }
}
