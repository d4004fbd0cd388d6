/// One iteration's inputs, as `collate_data_and_cast` lays them out (spec §4.7): the 2 global
/// crops of B images crop-major (row c·B + i is crop c of image i), the L·B local crops likewise,
/// and the masks of the global crops (2B, P) in the same row order, patch n = r·(G/p) + c.
public struct SSLBatch: Sendable {
    public var batchSize: Int
    /// (2B, C, G, G) contiguous.
    public var globalCrops: [Float]
    public var globalSize: Int
    /// (L·B, C, S, S) contiguous.
    public var localCrops: [Float]
    public var localCount: Int
    public var localSize: Int
    /// (2B · (G/p)²), true = masked.
    public var masks: [Bool]

    public init(batchSize: Int, globalCrops: [Float], globalSize: Int, localCrops: [Float], localCount: Int,
                localSize: Int, masks: [Bool]) {
        self.batchSize = batchSize
        self.globalCrops = globalCrops
        self.globalSize = globalSize
        self.localCrops = localCrops
        self.localCount = localCount
        self.localSize = localSize
        self.masks = masks
    }

    /// Checks the sizes against each other and the model (`what` names the source in errors).
    public func validate(channels: Int, patch: Int, what: String) throws {
        func fail(_ m: String) -> TrainingError { .stepInput(file: what, message: m) }
        let b = batchSize, g = globalSize, s = localSize
        guard b > 0 else { throw fail("batch size must be positive") }
        guard g >= patch, g % patch == 0 else { throw fail("global crops of \(g)x\(g) are not a multiple of the patch size \(patch)") }
        guard globalCrops.count == 2 * b * channels * g * g else {
            throw fail("global crops hold \(globalCrops.count) values, expected (\(2 * b), \(channels), \(g), \(g))")
        }
        if localCount > 0 {
            guard s >= patch, s % patch == 0 else { throw fail("local crops of \(s)x\(s) are not a multiple of the patch size \(patch)") }
        }
        guard localCrops.count == localCount * b * channels * s * s else {
            throw fail("local crops hold \(localCrops.count) values, expected (\(localCount * b), \(channels), \(s), \(s))")
        }
        let p = (g / patch) * (g / patch)
        guard masks.count == 2 * b * p else { throw fail("masks hold \(masks.count) flags, expected (\(2 * b), \(p))") }
    }
}
