import Foundation
import Formats
import TensorStore
import TestSupport
import XCTest

/// The cases of Fixtures/kernels/kernels.json (written by Scripts/make-goldens from PyTorch):
/// one op, its parameters, named .npy inputs and the reference output.
struct KernelCase {
    let name: String
    let op: String
    let params: [String: Any]
    let files: [String: String]

    func tensor(_ role: String) throws -> Tensor {
        guard let file = files[role] else { throw XCTSkip("case \(name) has no '\(role)'") }
        return try NPY.read(path: fixturePath("kernels/" + file))
    }

    func ints(_ key: String) -> [Int]? { (params[key] as? [Any])?.compactMap { ($0 as? NSNumber)?.intValue } }
    func doubles(_ key: String) -> [Double]? { (params[key] as? [Any])?.compactMap { ($0 as? NSNumber)?.doubleValue } }
    func double(_ key: String) -> Double? { (params[key] as? NSNumber)?.doubleValue }
    func bool(_ key: String) -> Bool? { (params[key] as? NSNumber)?.boolValue }
}

enum KernelFixtures {
    static func cases(op: String) throws -> [KernelCase] {
        let data = try Data(contentsOf: URL(fileURLWithPath: fixturePath("kernels/kernels.json")))
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let cases = root["cases"] as? [[String: Any]] else {
            throw XCTSkip("kernels.json has no cases")
        }
        return cases.compactMap { c -> KernelCase? in
            guard let name = c["name"] as? String, let o = c["op"] as? String, o == op else { return nil }
            var files: [String: String] = [:]
            for (k, v) in c { if let s = v as? String, s.hasSuffix(".npy") { files[k] = s } }
            return KernelCase(name: name, op: o, params: c["params"] as? [String: Any] ?? [:], files: files)
        }
    }

    /// max |a − b| over two equally long arrays.
    static func maxAbsError(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        var m: Float = 0
        for (x, y) in zip(a, b) { m = max(m, abs(x - y)) }
        return m
    }
}
