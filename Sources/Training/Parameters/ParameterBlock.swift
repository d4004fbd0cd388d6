import Kernels
import TensorStore

/// One tensor of a parameter block: its name relative to the module (the official state-dict
/// name, e.g. `blocks.0.attn.qkv.weight`), its shape as PyTorch stores it, and where it lives.
public struct ParameterSlot: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    public let offset: Int
    public var count: Int { shape.reduce(1, *) }
}

/// The tensors of one module, in registration order, packed end to end.
public struct ParameterLayout: Sendable, Equatable {
    public let slots: [ParameterSlot]
    public let count: Int
    private let index: [String: Int]

    public init(_ entries: [(String, [Int])]) {
        var slots: [ParameterSlot] = []
        var offset = 0
        for (name, shape) in entries {
            slots.append(ParameterSlot(name: name, shape: shape, offset: offset))
            offset += shape.reduce(1, *)
        }
        self.slots = slots
        self.count = offset
        self.index = Dictionary(uniqueKeysWithValues: slots.enumerated().map { ($1.name, $0) })
    }

    public func slot(_ name: String) -> ParameterSlot? { index[name].map { slots[$0] } }

    public static func == (a: ParameterLayout, b: ParameterLayout) -> Bool { a.slots == b.slots }
}

/// A module's tensors in one contiguous Float buffer (llm.c's `params_memory`). Parameters,
/// gradients, AdamW moments and the teacher share the layout, so the optimiser, clipping and EMA
/// are loops over flat arrays, and per-tensor rules (parameter groups) look at `layout.slots`.
public final class ParameterBlock: @unchecked Sendable {
    public let layout: ParameterLayout
    public let values: FloatBuffer

    /// Zeros.
    public init(layout: ParameterLayout) {
        self.layout = layout
        self.values = FloatBuffer(count: layout.count)
    }

    public var count: Int { layout.count }
    public var base: UnsafeMutablePointer<Float> { values.pointer }

    /// The first element of tensor `name`. Names come from the layout's own builders, so a miss
    /// is a programming error.
    public func pointer(_ name: String) -> UnsafeMutablePointer<Float> {
        guard let s = layout.slot(name) else { preconditionFailure("no parameter '\(name)' in this module") }
        return values.pointer + s.offset
    }

    public func zero() { values.pointer.update(repeating: 0, count: layout.count) }

    public func copy(from other: ParameterBlock) {
        precondition(other.layout == layout, "copying between different layouts")
        values.pointer.update(from: other.values.pointer, count: layout.count)
    }

    /// A copy with the same layout.
    public func clone() -> ParameterBlock {
        let b = ParameterBlock(layout: layout)
        b.copy(from: self)
        return b
    }

    /// Fills every tensor from `store[prefix + name]`, checking shapes and converting to Float32.
    /// With `strict`, a tensor under `prefix` that the layout lacks is an error too.
    public func load(from store: TensorStore, prefix: String, file: String, strict: Bool = true) throws {
        for s in layout.slots {
            let full = prefix + s.name
            guard let t = store[full] else { throw TrainingError.missingTensor(name: full, file: file) }
            guard t.dtype.isFloatingPoint else { throw TrainingError.tensorDType(name: full, file: file, dtype: t.dtype) }
            guard t.shape.dims == s.shape else {
                throw TrainingError.tensorShape(name: full, file: file, shape: t.shape.dims, expected: s.shape)
            }
            let dst = values.pointer + s.offset
            if t.dtype == .f32 {
                t.withContiguousBytes { raw in
                    if raw.count > 0 { UnsafeMutableRawPointer(dst).copyMemory(from: raw.baseAddress!, byteCount: raw.count) }
                }
            } else {
                let f = t.floats()
                f.withUnsafeBufferPointer { if let b = $0.baseAddress { dst.update(from: b, count: f.count) } }
            }
        }
        if strict {
            for name in store.names where name.hasPrefix(prefix) && layout.slot(String(name.dropFirst(prefix.count))) == nil {
                throw TrainingError.unexpectedTensor(name: name, file: file)
            }
        }
    }

    /// Every tensor as Float32 under `prefix + name`, appended to `store`.
    public func export(into store: inout TensorStore, prefix: String) throws {
        for s in layout.slots {
            let t = try Tensor(shape: Shape(s.shape), floats: Array(UnsafeBufferPointer(start: values.pointer + s.offset, count: s.count)))
            try store.insert(t, named: prefix + s.name)
        }
    }

    /// The contents of one tensor (tests, reports).
    public func array(_ name: String) -> [Float] {
        guard let s = layout.slot(name) else { return [] }
        return Array(UnsafeBufferPointer(start: values.pointer + s.offset, count: s.count))
    }
}
