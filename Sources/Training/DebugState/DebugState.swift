import DINOv2
import Foundation
import Formats
import TensorStore

/// A PyTorch-made training debug state (`dinokit-sslstep/1`, Fixtures/sslstep/README.md):
/// ```
/// config.json           SSLConfig (SSLConfig.parse)
/// initial.safetensors   student.*, teacher.*, dino_loss.center, ibot_patch_loss.center
/// step_<t>.npz          global_crops (2B,3,G,G), local_crops (L·B,3,S,S), masks (2B,(G/p)²) bool;
///                       G need not be the config's img_size (the table is resampled)
/// expected.json         {"steps": [{"dino_local", "dino_global", "koleo", "ibot", "total"}, …]}
/// grads_0.safetensors   d total / d every student parameter at step 0, before clipping
/// final.safetensors     the initial names after all steps
/// ```
/// Everything is read and checked up front except the step inputs, read when asked for.
public struct DebugState {
    public let directory: String
    public let config: SSLConfig
    public let initial: TensorStore
    public let expected: [LossTerms]
    public let expectedGradients: TensorStore
    public let expectedFinal: TensorStore

    public static let configFile = "config.json", initialFile = "initial.safetensors"
    public static let expectedFile = "expected.json", gradientsFile = "grads_0.safetensors"
    public static let finalFile = "final.safetensors"
    public static func stepFile(_ t: Int) -> String { "step_\(t).npz" }

    public init(directory: String) throws {
        self.directory = directory
        func path(_ name: String) throws -> String {
            let p = (directory as NSString).appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: p) else { throw TrainingError.missingFile(path: p) }
            return p
        }
        let initialPath = try path(Self.initialFile)
        initial = try Safetensors.read(path: initialPath)
        let configPath = try path(Self.configFile)
        guard let bytes = try? RegularFile.read(configPath) else { throw TrainingError.missingFile(path: configPath) }
        let data = Data(bytes)
        // LayerScale is a property of the weights (the config's `layerscale_init` is only the
        // constructor value used in training).
        config = try SSLConfig.parse(json: data, file: configPath,
                                     layerScale: initial["student.backbone.blocks.0.ls1.gamma"] != nil)
        let expectedPath = try path(Self.expectedFile)
        expected = try Self.readLosses(path: expectedPath)
        guard expected.count == config.steps else {
            throw TrainingError.config(file: expectedPath, message: "holds \(expected.count) steps, config.json says \(config.steps)")
        }
        expectedGradients = try Safetensors.read(path: try path(Self.gradientsFile))
        expectedFinal = try Safetensors.read(path: try path(Self.finalFile))
        for t in 0..<config.steps { _ = try path(Self.stepFile(t)) }
    }

    /// `{"steps": [{"dino_local", "dino_global", "koleo", "ibot", "total"}, …]}`.
    public static func readLosses(path: String) throws -> [LossTerms] {
        guard let bytes = try? RegularFile.read(path) else { throw TrainingError.missingFile(path: path) }
        let data = Data(bytes)
        struct File: Decodable { var steps: [LossTerms] }
        do {
            return try JSONDecoder().decode(File.self, from: data).steps
        } catch {
            throw TrainingError.config(file: path, message: "expected {\"steps\": [{\"dino_local\", \"dino_global\", \"koleo\", \"ibot\", \"total\"}, …]} (\(error))")
        }
    }

    /// Step `t`'s crops and masks, checked against the config.
    public func batch(step t: Int) throws -> SSLBatch {
        let file = (directory as NSString).appendingPathComponent(Self.stepFile(t))
        let store = try NPZ.read(path: file)
        let c = config, b = c.batchSize, ch = c.backbone.inChannels, p = c.backbone.patchSize
        func fail(_ m: String) -> TrainingError { .stepInput(file: file, message: m) }
        func tensor(_ name: String) throws -> Tensor {
            guard let t = store[name] else { throw fail("array '\(name)' is missing") }
            return t
        }
        let g = try tensor("global_crops"), l = try tensor("local_crops"), m = try tensor("masks")
        guard g.dtype.isFloatingPoint, g.shape.rank == 4, g.shape[0] == 2 * b, g.shape[1] == ch, g.shape[2] == g.shape[3] else {
            throw fail("global_crops is \(g.dtype) \(g.shape), expected float (\(2 * b), \(ch), G, G)")
        }
        guard l.dtype.isFloatingPoint, l.shape.rank == 4, l.shape[0] == c.localCrops * b, l.shape[1] == ch,
              l.shape[2] == l.shape[3] else {
            throw fail("local_crops is \(l.dtype) \(l.shape), expected float (\(c.localCrops * b), \(ch), S, S)")
        }
        guard m.dtype == .bool || m.dtype == .u8 else { throw fail("masks is \(m.dtype), expected bool") }
        // The global crops need not be img_size: like the local crops, a grid other than the
        // table's is resampled (as when training continues from a hub checkpoint's 37×37 table on
        // 224 crops). What must hold — whole patches, a grid of at least one — `validate` checks,
        // before the masks' shape is read against that grid.
        let gs = g.shape[2]
        let masks = m.withContiguousBytes { raw in raw.map { $0 != 0 } }
        let batch = SSLBatch(batchSize: b, globalCrops: g.floats(), globalSize: gs, localCrops: l.floats(),
                             localCount: c.localCrops, localSize: l.shape[2], masks: masks)
        try batch.validate(channels: ch, patch: p, what: file)
        let grid = gs / p
        guard m.shape.dims == [2 * b, grid * grid] else {
            throw fail("masks is \(m.dtype) \(m.shape), expected bool (\(2 * b), \(grid * grid))")
        }
        return batch
    }
}
