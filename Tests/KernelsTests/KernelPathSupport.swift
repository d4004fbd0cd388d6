import Kernels
import XCTest

/// Runs a check once per kernel path this CPU supports (scalar always; AVX2 and AVX-512 where the
/// CPU has them), restoring the default path afterwards. Paths the CPU lacks are named in the log:
/// they are exercised on machines that have them.
enum KernelPaths {
    static func each(_ body: (KernelPath) throws -> Void) rethrows {
        let supported = KernelDispatch.supported
        for path in KernelPath.allCases {
            guard path <= supported else {
                print("kernel path \(path.rawValue) not supported on this CPU; not exercised here")
                continue
            }
            try KernelDispatch.with(path) { active in
                XCTAssertEqual(active, path)
                try body(path)
            }
        }
    }
}

/// max |a − b| ≤ tolerance · max |b|, with a message naming the worst element.
func assertClose(_ a: [Float], _ b: [Float], relative tolerance: Float, _ what: String,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, what, file: file, line: line)
    var worst: Float = 0, at = 0, scale: Float = 0
    for (i, (x, y)) in zip(a, b).enumerated() {
        scale = max(scale, abs(y))
        if abs(x - y) > worst { worst = abs(x - y); at = i }
    }
    XCTAssertLessThanOrEqual(worst, tolerance * max(scale, Float.leastNormalMagnitude),
                             "\(what): max |error| \(worst) at \(at) vs max |reference| \(scale)", file: file, line: line)
}
