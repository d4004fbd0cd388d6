import DINOv2
import TensorStore
import XCTest

/// Every hub variant's config is recovered from its weights' names and shapes (spec §1.1):
/// width, depth, heads (D/64), FFN kind and hidden size, registers, and the official
/// interpolation semantics that go with registers.
final class ConfigDetectionTests: XCTestCase {
    /// A hub-named store with the right shapes and no real data: every tensor is a zero-stride
    /// view of one float, so even ViT-g costs nothing.
    static func shapeOnlyStore(dim d: Int, depth: Int, swiglu: Bool, registers: Int, grid: Int = 37) throws -> TensorStore {
        let one = Storage(byteCount: 4)
        var store = TensorStore()
        func add(_ name: String, _ shape: [Int]) throws {
            try store.insert(Tensor(storage: one, dtype: .f32, shape: Shape(shape), strides: shape.map { _ in 0 }), named: name)
        }
        try add("cls_token", [1, 1, d])
        try add("pos_embed", [1, 1 + grid * grid, d])
        if registers > 0 { try add("register_tokens", [1, registers, d]) }
        try add("mask_token", [1, d])
        try add("patch_embed.proj.weight", [d, 3, 14, 14])
        try add("patch_embed.proj.bias", [d])
        let hidden = swiglu ? ((Int(Double(4 * d) * 2 / 3) + 7) / 8) * 8 : 4 * d
        for i in 0..<depth {
            for n in ["norm1", "norm2"] {
                try add("blocks.\(i).\(n).weight", [d])
                try add("blocks.\(i).\(n).bias", [d])
            }
            try add("blocks.\(i).attn.qkv.weight", [3 * d, d])
            try add("blocks.\(i).attn.qkv.bias", [3 * d])
            try add("blocks.\(i).attn.proj.weight", [d, d])
            try add("blocks.\(i).attn.proj.bias", [d])
            try add("blocks.\(i).ls1.gamma", [d])
            try add("blocks.\(i).ls2.gamma", [d])
            if swiglu {
                try add("blocks.\(i).mlp.w12.weight", [2 * hidden, d])
                try add("blocks.\(i).mlp.w12.bias", [2 * hidden])
                try add("blocks.\(i).mlp.w3.weight", [d, hidden])
                try add("blocks.\(i).mlp.w3.bias", [d])
            } else {
                try add("blocks.\(i).mlp.fc1.weight", [hidden, d])
                try add("blocks.\(i).mlp.fc1.bias", [hidden])
                try add("blocks.\(i).mlp.fc2.weight", [d, hidden])
                try add("blocks.\(i).mlp.fc2.bias", [d])
            }
        }
        try add("norm.weight", [d])
        try add("norm.bias", [d])
        return store
    }

    func testEveryHubVariant() throws {
        let variants: [(String, Int, Int, Int, Bool, Int)] = [
            ("dinov2_vits14", 384, 12, 6, false, 1536), ("dinov2_vitb14", 768, 12, 12, false, 3072),
            ("dinov2_vitl14", 1024, 24, 16, false, 4096), ("dinov2_vitg14", 1536, 40, 24, true, 4096),
        ]
        for (name, d, depth, heads, swiglu, hidden) in variants {
            for registers in [0, 4] {
                let c = try Config.detect(hubStore: Self.shapeOnlyStore(dim: d, depth: depth, swiglu: swiglu, registers: registers))
                let expectedName = registers > 0 ? name + "_reg" : name
                XCTAssertEqual(c.variant, expectedName)
                XCTAssertEqual(c.embedDim, d, expectedName)
                XCTAssertEqual(c.depth, depth, expectedName)
                XCTAssertEqual(c.numHeads, heads, expectedName)
                XCTAssertEqual(c.headDim, 64, expectedName)
                XCTAssertEqual(c.ffn, swiglu ? .swiglu : .mlp, expectedName)
                XCTAssertEqual(c.ffnHidden, hidden, expectedName)
                XCTAssertEqual(c.registerTokens, registers, expectedName)
                XCTAssertEqual(c.positionGrid, 37, expectedName)
                XCTAssertTrue(c.layerScale, expectedName)
                XCTAssertEqual(c.layerNormEps, 1e-6, expectedName)
                XCTAssertEqual(c.interpolation, registers > 0 ? PositionInterpolation(offset: 0, antialias: true)
                                                              : PositionInterpolation(offset: 0.1, antialias: false), expectedName)
            }
        }
    }

    func testCustomWidthNeedsHeadsWhenNotAMultipleOf64() throws {
        let store = try Self.shapeOnlyStore(dim: 40, depth: 3, swiglu: false, registers: 0, grid: 16)
        XCTAssertThrowsError(try Config.detect(hubStore: store))
        let c = try Config.detect(hubStore: store, numHeads: 5)
        XCTAssertEqual(c.depth, 3)
        XCTAssertEqual(c.headDim, 8)
        XCTAssertEqual(c.positionGrid, 16)
        XCTAssertNil(c.variant)
        var withMetadata = store
        withMetadata.metadata["num_heads"] = "4"
        XCTAssertEqual(try Config.detect(hubStore: withMetadata).numHeads, 4)
    }

    func testHuggingFaceSemanticsDropOnlyTheNonRegisterOffset() {
        XCTAssertEqual(PositionInterpolation.semantics(.hf, registerTokens: 0), PositionInterpolation(offset: 0, antialias: false))
        XCTAssertEqual(PositionInterpolation.semantics(.hf, registerTokens: 4), PositionInterpolation.official(registerTokens: 4))
    }
}
