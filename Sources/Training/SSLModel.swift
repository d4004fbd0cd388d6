import DINOv2
import Kernels
import TensorStore

/// The sub-modules of the student or the teacher (`nn.ModuleDict` in ssl_meta_arch.py), each one
/// flat parameter block. Also the shape of their gradients.
public struct SSLModules {
    public let backbone: ParameterBlock
    public let dinoHead: ParameterBlock
    /// nil when iBOT shares the DINO head.
    public let ibotHead: ParameterBlock?

    public init(config c: SSLConfig) {
        backbone = ParameterBlock(layout: backboneLayout(c.backbone))
        dinoHead = ParameterBlock(layout: headLayout(c.dinoHead))
        ibotHead = c.ibotHead.map { ParameterBlock(layout: headLayout($0)) }
    }

    /// (state-dict name, block) in the official order: backbone, dino_head, ibot_head. The
    /// optimiser, clipping and EMA go through the modules in this order.
    public var named: [(name: String, block: ParameterBlock)] {
        [("backbone", backbone), ("dino_head", dinoHead)] + (ibotHead.map { [("ibot_head", $0)] } ?? [])
    }

    public var blocks: [ParameterBlock] { named.map(\.block) }

    public func zero() { for b in blocks { b.zero() } }
}

/// Pointer views of a student's, teacher's or gradient's modules (made once: the blocks never move).
public struct ModuleTensors {
    public let backbone: BackboneTensors
    public let dinoHead: HeadTensors
    public let ibotHead: HeadTensors?

    public init(_ m: SSLModules, config c: SSLConfig) {
        backbone = BackboneTensors(m.backbone, config: c.backbone)
        dinoHead = HeadTensors(m.dinoHead, config: c.dinoHead)
        ibotHead = m.ibotHead.map { HeadTensors($0, config: c.ibotHeadConfig) }
    }
}

/// DINOv2's SSL meta-architecture state (what a training checkpoint holds): student and teacher,
/// and the DINO and iBOT loss modules' centers, under the training-checkpoint names
/// (`student.backbone.*`, `student.dino_head.*`, [`student.ibot_head.*`], `teacher.*`,
/// `dino_loss.center` (1, K), `ibot_patch_loss.center` (1, 1, K_ibot)).
public final class SSLModel {
    public let config: SSLConfig
    public let student: SSLModules
    public let teacher: SSLModules
    public let dinoCenter: TeacherCenter
    public let ibotCenter: TeacherCenter

    public static let dinoCenterName = "dino_loss.center"
    public static let ibotCenterName = "ibot_patch_loss.center"

    /// Reads every tensor by name from `store`; a missing, misshapen or unexpected tensor is an
    /// error naming it and `file`.
    public init(config c: SSLConfig, store: TensorStore, file: String) throws {
        config = c
        student = SSLModules(config: c)
        teacher = SSLModules(config: c)
        for (prefix, modules) in [("student.", student), ("teacher.", teacher)] {
            for (name, block) in modules.named { try block.load(from: store, prefix: prefix + name + ".", file: file) }
        }
        let k = c.dinoHead.outDim, ki = c.ibotHeadConfig.outDim
        let centers = try [(Self.dinoCenterName, [1, k]), (Self.ibotCenterName, [1, 1, ki])].map { name, shape -> [Float] in
            guard let t = store[name] else { throw TrainingError.missingTensor(name: name, file: file) }
            guard t.dtype.isFloatingPoint else { throw TrainingError.tensorDType(name: name, file: file, dtype: t.dtype) }
            guard t.shape.dims == shape else { throw TrainingError.tensorShape(name: name, file: file, shape: t.shape.dims, expected: shape) }
            return t.floats()
        }
        dinoCenter = TeacherCenter(values: centers[0], momentum: Float(c.loss.centerMomentum))
        ibotCenter = TeacherCenter(values: centers[1], momentum: Float(c.loss.centerMomentum))
        let known = Set(try export().names)
        for name in store.names where !known.contains(name) {
            throw TrainingError.unexpectedTensor(name: name, file: file)
        }
    }

    /// Seeded synthetic weights (for benchmarks and smoke tests, not the training
    /// initialisation): uniform values of scale 0.02 from DinoKit's LCG, norm weights 1,
    /// LayerScale 0.1, `weight_g` 1; the teacher a copy of the student; centers 0.
    public init(config c: SSLConfig, seed: UInt32) {
        config = c
        student = SSLModules(config: c)
        teacher = SSLModules(config: c)
        var g = SyntheticInput(seed: seed)
        for block in student.blocks {
            for s in block.layout.slots {
                let p = block.base + s.offset
                let name = s.name
                let constant: Float? = name.hasSuffix("norm1.weight") || name.hasSuffix("norm2.weight") || name == "norm.weight"
                    || name == "last_layer.weight_g" ? 1 : (name.hasSuffix("gamma") ? 0.1 : nil)
                for i in 0..<s.count { p[i] = constant ?? g.nextValue() * 0.01 }
            }
        }
        for (t, s) in zip(teacher.blocks, student.blocks) { t.copy(from: s) }
        dinoCenter = TeacherCenter(values: [Float](repeating: 0, count: c.dinoHead.outDim), momentum: Float(c.loss.centerMomentum))
        ibotCenter = TeacherCenter(values: [Float](repeating: 0, count: c.ibotHeadConfig.outDim),
                                   momentum: Float(c.loss.centerMomentum))
    }

    /// The state under the training-checkpoint names, as Float32.
    public func export() throws -> TensorStore {
        var store = TensorStore()
        for (prefix, modules) in [("student.", student), ("teacher.", teacher)] {
            for (name, block) in modules.named { try block.export(into: &store, prefix: prefix + name + ".") }
        }
        try store.insert(try Tensor(shape: [1, config.dinoHead.outDim], floats: dinoCenter.values), named: Self.dinoCenterName)
        try store.insert(try Tensor(shape: [1, 1, config.ibotHeadConfig.outDim], floats: ibotCenter.values),
                         named: Self.ibotCenterName)
        return store
    }
}
