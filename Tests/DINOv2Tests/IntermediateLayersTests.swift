import DINOv2
import TensorStore
import XCTest

/// `intermediateLayers` follows `get_intermediate_layers`: n as a count or as block indices,
/// outputs in block order, registers dropped from the patches, reshape to (B, D, h, w), class
/// token on request, final norm on request. (Values of block outputs are checked against PyTorch
/// by the golden sets; these tests pin the selection and layout rules.)
final class IntermediateLayersTests: XCTestCase {
    func testLastBlockNormedEqualsForwardFeatures() throws {
        let model = try InputValidationTests.tinyModel("tiny-reg")
        let x = try SyntheticInput.tensor(seed: 5, shape: [2, 3, 28, 42])
        let f = try model.forwardFeatures(x)
        let out = try model.intermediateLayers(x, n: 1, returnClassToken: true)
        XCTAssertEqual(out.count, 1)
        XCTAssertEqual(out[0].blockIndex, 1)
        XCTAssertTrue(out[0].patchTokens.bitwiseEqual(f.patchTokens))
        XCTAssertTrue(try XCTUnwrap(out[0].classToken).bitwiseEqual(f.clsToken))
        XCTAssertTrue(try model(x).bitwiseEqual(f.clsToken))
        XCTAssertEqual(f.regTokens.shape, [2, 4, 32])
        XCTAssertEqual(f.prenorm.shape, [2, 1 + 4 + 6, 32])
    }

    func testCountAndIndicesSelectTheSameBlocksInOrder() throws {
        let model = try InputValidationTests.tinyModel()
        let x = try SyntheticInput.tensor(seed: 6, shape: [1, 3, 28, 28])
        let byCount = try model.intermediateLayers(x, n: 2)
        let byIndices = try model.intermediateLayers(x, n: [1, 0])
        XCTAssertEqual(byCount.map(\.blockIndex), [0, 1])
        XCTAssertEqual(byIndices.map(\.blockIndex), [0, 1])
        for (a, b) in zip(byCount, byIndices) { XCTAssertTrue(a.patchTokens.bitwiseEqual(b.patchTokens)) }
        XCTAssertNil(byCount[0].classToken)
        XCTAssertTrue(try model.intermediateLayers(x, n: 0).isEmpty)
    }

    func testReshapeGivesChannelsFirstGrid() throws {
        let model = try InputValidationTests.tinyModel()
        let x = try SyntheticInput.tensor(seed: 7, shape: [2, 3, 28, 42])
        let flat = try model.intermediateLayers(x, n: [0], norm: false)[0].patchTokens
        let grid = try model.intermediateLayers(x, n: [0], reshape: true, norm: false)[0].patchTokens
        XCTAssertEqual(flat.shape, [2, 6, 32])
        XCTAssertEqual(grid.shape, [2, 32, 2, 3])
        let f = flat.floats(), g = grid.floats()
        for b in 0..<2 { for n in 0..<6 { for d in 0..<32 {
            XCTAssertEqual(g[(b * 32 + d) * 6 + n], f[(b * 6 + n) * 32 + d])
        } } }
    }

    func testWorkspaceReuseGivesIdenticalResults() throws {
        let model = try InputValidationTests.tinyModel()
        let ws = Workspace()
        let big = try SyntheticInput.tensor(seed: 8, shape: [2, 3, 56, 42])
        let small = try SyntheticInput.tensor(seed: 9, shape: [1, 3, 28, 28])
        let first = try model(small, workspace: ws)
        _ = try model.forwardFeatures(big, workspace: ws)
        XCTAssertTrue(try model(small, workspace: ws).bitwiseEqual(first))
        XCTAssertTrue(try model(small).bitwiseEqual(first))
    }
}
