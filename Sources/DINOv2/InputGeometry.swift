import TensorStore

/// A validated input batch's sizes: (B, C, H, W) pixels → B × (1 + R + h·w) token rows.
struct InputGeometry {
    private(set) var batch: Int
    let height: Int, width: Int
    let patchRows: Int, patchCols: Int
    let tokens: Int

    var patches: Int { patchRows * patchCols }
    var rows: Int { batch * tokens }

    /// Checks the image batch the way the official code would fail on it, with clearer words.
    init(config c: Config, input x: Tensor) throws {
        guard x.dtype.isFloatingPoint else { throw DINOv2Error.inputDType(x.dtype) }
        guard x.shape.rank == 4 else {
            throw DINOv2Error.inputShape(shape: x.shape.dims, expected: "(B, \(c.inChannels), H, W)")
        }
        let dims = x.shape.dims
        guard dims[0] > 0 else { throw DINOv2Error.inputShape(shape: dims, expected: "a batch of at least one image") }
        guard dims[1] == c.inChannels else { throw DINOv2Error.channelCount(got: dims[1], expected: c.inChannels) }
        let p = c.patchSize
        guard dims[2] >= p, dims[3] >= p, dims[2] % p == 0, dims[3] % p == 0 else {
            throw DINOv2Error.imageSize(height: dims[2], width: dims[3], patch: p)
        }
        batch = dims[0]
        height = dims[2]
        width = dims[3]
        patchRows = height / p
        patchCols = width / p
        tokens = 1 + c.registerTokens + patchRows * patchCols
        // cblas takes 32-bit sizes: the widest matrix is (rows, max(3D, FFN width)); attention
        // scores are tokens × tokens per head.
        let widest = Swift.max(3 * c.embedDim, c.ffn == .swiglu ? 2 * c.ffnHidden : c.ffnHidden, c.inChannels * p * p)
        let (total, o1) = (batch * tokens).multipliedReportingOverflow(by: widest)
        let (scores, o2) = tokens.multipliedReportingOverflow(by: tokens)
        guard !o1, !o2, total < Int(Int32.max), scores < Int(Int32.max) else {
            throw DINOv2Error.inputTooLarge("\(batch) images of \(height)x\(width) exceed 32-bit BLAS sizes; split the batch")
        }
    }

    /// Masks as one flag per (image, patch), or nil. Must be bool (B, h·w).
    func maskBits(_ masks: Tensor?, hasMaskToken: Bool) throws -> [Bool]? {
        guard let masks else { return nil }
        guard masks.shape.dims == [batch, patches] else {
            throw DINOv2Error.maskShape(shape: masks.shape.dims, expected: [batch, patches])
        }
        guard masks.dtype == .bool else { throw DINOv2Error.maskDType(masks.dtype) }
        guard hasMaskToken else { throw DINOv2Error.noMaskToken }
        return masks.withContiguousBytes { raw in raw.map { $0 != 0 } }
    }
}

extension InputGeometry {
    /// The geometry of images `range` of this batch.
    func slice(images range: Range<Int>) -> InputGeometry {
        var g = self
        g.batch = range.count
        return g
    }
}
