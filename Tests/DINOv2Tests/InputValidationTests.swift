import DINOv2
import Formats
import TensorStore
import TestSupport
import XCTest

/// Bad inputs and bad weights fail with a typed error that names the tensor and the expected
/// shape, never a crash.
final class InputValidationTests: XCTestCase {
    static func tinyStore(_ name: String = "tiny-plain") throws -> TensorStore {
        try Safetensors.read(path: fixturePath("golden/\(name)/model.safetensors"))
    }

    static func tinyModel(_ name: String = "tiny-plain") throws -> Model {
        try Model(store: tinyStore(name), numHeads: 2, parallelism: .init(threads: 2))
    }

    func input(_ shape: [Int]) throws -> Tensor { try SyntheticInput.tensor(seed: 1, shape: Shape(shape)) }

    /// A zero-filled tensor of any dtype.
    func zeros(_ dtype: DType, _ shape: [Int]) throws -> Tensor {
        let bytes = [UInt8](repeating: 0, count: Shape(shape).elementCount * dtype.size)
        return try bytes.withUnsafeBytes { try Tensor(dtype: dtype, shape: Shape(shape), bytes: $0) }
    }

    func expect(_ expected: DINOv2Error, _ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            XCTAssertEqual(error as? DINOv2Error, expected, file: file, line: line)
            XCTAssertFalse("\(error)".isEmpty)
        }
    }

    func testWrongChannelCount() throws {
        let model = try Self.tinyModel()
        expect(.channelCount(got: 1, expected: 3)) { _ = try model(self.input([1, 1, 28, 28])) }
        expect(.channelCount(got: 4, expected: 3)) { _ = try model.forwardFeatures(self.input([2, 4, 28, 28])) }
    }

    func testSizesNotMultiplesOfThePatch() throws {
        let model = try Self.tinyModel()
        expect(.imageSize(height: 30, width: 28, patch: 14)) { _ = try model(self.input([1, 3, 30, 28])) }
        expect(.imageSize(height: 28, width: 27, patch: 14)) { _ = try model.intermediateLayers(self.input([1, 3, 28, 27])) }
        expect(.imageSize(height: 0, width: 28, patch: 14)) {
            _ = try model(Tensor(shape: [1, 3, 0, 28], floats: []))
        }
    }

    func testWrongRankAndDType() throws {
        let model = try Self.tinyModel()
        expect(.inputShape(shape: [3, 28, 28], expected: "(B, 3, H, W)")) { _ = try model(self.input([3, 28, 28])) }
        let ints = try zeros(.i64, [1, 3, 14, 14])
        expect(.inputDType(.i64)) { _ = try model(ints) }
    }

    func testMaskShapeAndDType() throws {
        let model = try Self.tinyModel()
        let x = try input([2, 3, 28, 42])   // 2 × 3 patches
        let wrongShape = try zeros(.bool, [2, 5])
        expect(.maskShape(shape: [2, 5], expected: [2, 6])) { _ = try model.forwardFeatures(x, masks: wrongShape) }
        expect(.maskDType(.f32)) { _ = try model.forwardFeatures(x, masks: self.zeros(.f32, [2, 6])) }
        expect(.maskShape(shape: [2, 2, 3], expected: [2, 6])) { _ = try model.forwardFeatures(x, masks: self.zeros(.bool, [2, 2, 3])) }
    }

    func testMissingWeightIsNamedWithItsShape() throws {
        var store = try Self.tinyStore()
        store.remove("blocks.1.attn.proj.bias")
        expect(.missingWeight(name: "blocks.1.attn.proj.bias", expected: "(32,)")) { _ = try Model(store: store, numHeads: 2) }
    }

    func testMisshapedWeightIsNamedWithItsShape() throws {
        var store = try Self.tinyStore()
        store["blocks.0.mlp.fc2.weight"] = try Tensor(shape: [32, 64], floats: [Float](repeating: 0, count: 32 * 64))
        expect(.weightShape(name: "blocks.0.mlp.fc2.weight", shape: [32, 64], expected: "(32, 128)")) {
            _ = try Model(store: store, numHeads: 2)
        }
    }

    func testHeadsThatDoNotDivideTheWidth() throws {
        XCTAssertThrowsError(try Model(store: Self.tinyStore(), numHeads: 3)) { error in
            guard case .unsupportedArchitecture = error as? DINOv2Error else { return XCTFail("\(error)") }
        }
    }

    func testIntermediateSelectionsTheOfficialCodeRejects() throws {
        let model = try Self.tinyModel()   // depth 2
        let x = try input([1, 3, 28, 28])
        for bad: LayerSelection in [3, -1, [2], [-1], [0, 0]] {
            XCTAssertThrowsError(try model.intermediateLayers(x, n: bad), "\(bad)") { error in
                guard case .layerSelection = error as? DINOv2Error else { return XCTFail("\(error)") }
            }
        }
    }
}
