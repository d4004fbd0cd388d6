import Formats
import Foundation
import TensorStore
import TestSupport
import XCTest

/// NumPy arrays in pickles written by Python (protocols 2, 4, 5, NumPy 2 names, Python 2's
/// cPickle layout), read by the safe unpickler with NumPy's array globals allowed for this
/// reader only; everything else still refused by name.
final class NumpyPickleTests: XCTestCase {
    struct Case: Decodable {
        var file: String
        var key: String?
        var dtype: String?
        var shape: [Int]?
        var values: [Double]?
        var error: String?
        var global: String?
    }

    func testArraysReadAsNumPyWroteThem() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: fixturePath("cifar/pickles/manifest.json")))
        let cases = try JSONDecoder().decode([String: [Case]].self, from: data)["cases"]!
        XCTAssertGreaterThanOrEqual(cases.count, 9)
        for c in cases {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixturePath("cifar/pickles/" + c.file))))
            switch c.error {
            case nil:
                let value = try NumpyPickle.unpickle(bytes)
                let array = try NumpyPickle.array(try XCTUnwrap(value.entry(c.key!), c.file))
                XCTAssertEqual(array.dtype.rawValue, c.dtype, c.file)
                XCTAssertEqual(array.shape, c.shape, c.file)
                let t = try array.bytes.withUnsafeBytes { try Tensor(dtype: array.dtype, shape: Shape(array.shape), bytes: $0) }
                if array.dtype == .i64 {
                    let ints = t.withContiguousBytes { raw in (0..<t.elementCount).map { Double(raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) } }
                    XCTAssertEqual(ints, c.values, c.file)
                } else {
                    XCTAssertEqual(t.floats().map(Double.init), c.values, c.file)
                }
            case "forbiddenGlobal":
                XCTAssertThrowsError(try NumpyPickle.unpickle(bytes), c.file) { error in
                    guard case let PickleError.forbiddenGlobal(module, name, _) = error else { return XCTFail("\(c.file): \(error)") }
                    XCTAssertEqual("\(module).\(name)", c.global, c.file)
                }
            case "sizeMismatch":
                let value = try NumpyPickle.unpickle(bytes)
                XCTAssertThrowsError(try NumpyPickle.array(value.entry("data")!), c.file) { error in
                    guard case NumpyPickleError.sizeMismatch = error else { return XCTFail("\(c.file): \(error)") }
                }
            default:
                XCTFail("unknown case \(c.error!)")
            }
        }
    }

    func testTheDefaultAllowListStaysTorchs() throws {
        // The same pickle the CIFAR reader accepts is refused by the weights unpickler.
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixturePath("cifar/pickles/u8_python2.pkl"))))
        XCTAssertThrowsError(try Unpickler.unpickle(bytes)) { error in
            guard case let PickleError.forbiddenGlobal(module, name, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual("\(module).\(name)", "numpy.core.multiarray._reconstruct")
        }
        XCTAssertFalse(PickleAllowList.isAllowed(module: "numpy", name: "ndarray"))
    }

    func testBlockedModulesStayBlockedEvenWhenListed() throws {
        let bytes: [UInt8] = [0x80, 0x02] + Array("cos\nsystem\n)R.".utf8)
        try bytes.withUnsafeBytes { buffer in
            var unpickler = Unpickler(buffer)
            unpickler.extraGlobals = ["os.system"]
            XCTAssertThrowsError(try unpickler.load()) { error in
                guard case PickleError.forbiddenGlobal = error else { return XCTFail("\(error)") }
            }
        }
    }
}
