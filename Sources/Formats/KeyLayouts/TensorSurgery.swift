import TensorStore

/// The few tensor operations layout translation needs. Splitting is a zero-copy view (a new offset
/// into the same storage); joining copies when read (a deferred storage); folding allocates one
/// new owned tensor.
enum TensorSurgery {
    /// Elements `range` of `axis`, as a view on the same storage.
    static func slice(_ t: Tensor, _ range: Range<Int>, axis: Int, name: String) throws -> Tensor {
        guard axis >= 0, axis < t.shape.rank, range.lowerBound >= 0, range.upperBound <= t.shape[axis] else {
            throw LayoutError.badTensor(name: name, detail: "cannot take \(range) of axis \(axis) from shape \(t.shape)")
        }
        var dims = t.shape.dims
        dims[axis] = range.count
        return try Tensor(storage: t.storage, dtype: t.dtype, shape: Shape(dims), strides: t.strides,
                          offset: t.offset + range.lowerBound * t.strides[axis])
    }

    /// `parts` joined along `axis` into a new contiguous tensor, whose bytes are copied from the
    /// parts each time they are read (a deferred storage, `DeferredBytes`): translating a layout
    /// (HF's q, k and v into qkv) then costs no memory until a tensor is bound or written, one at
    /// a time. All parts must share dtype, rank and every other dimension.
    static func concatenate(_ parts: [(name: String, tensor: Tensor)], axis: Int) throws -> Tensor {
        guard let first = parts.first?.tensor else {
            throw LayoutError.badTensor(name: "(none)", detail: "nothing to concatenate")
        }
        guard axis >= 0, axis < first.shape.rank else {
            throw LayoutError.badTensor(name: parts[0].name, detail: "shape \(first.shape) has no axis \(axis)")
        }
        var total = 0
        for (name, t) in parts {
            var a = t.shape.dims, b = first.shape.dims
            guard t.dtype == first.dtype, a.count == b.count else {
                throw LayoutError.badTensor(name: name, detail: "\(t.dtype) \(t.shape) does not match \(parts[0].name) (\(first.dtype) \(first.shape))")
            }
            total += a[axis]
            a[axis] = 0
            b[axis] = 0
            guard a == b else {
                throw LayoutError.badTensor(name: name, detail: "shape \(t.shape) does not match \(parts[0].name) \(first.shape) outside axis \(axis)")
            }
        }
        var dims = first.shape.dims
        dims[axis] = total
        let shape = Shape(dims)
        // Contiguous parts are read where they are; a strided one is copied once, now.
        let sources = parts.map { $0.tensor.contiguous() }
        let outer = first.shape.dims[..<axis].reduce(1, *)
        // Each part contributes one contiguous run of `run` bytes per outer index.
        let runs = sources.map { $0.shape.dims[axis...].reduce(1, *) * first.dtype.size }
        let starts = runs.indices.map { runs[..<$0].reduce(0, +) }
        let rowBytes = runs.reduce(0, +)
        let deferred = DeferredBytes(count: outer * rowBytes, sources: sources.map(\.storage)) { dst, offset in
            guard dst.count > 0 else { return }
            let end = offset + dst.count
            for (p, part) in sources.enumerated() where runs[p] > 0 {
                part.withContiguousBytes { src in
                    // The outer rows whose run of this part overlaps [offset, end).
                    for o in (offset / rowBytes)...((end - 1) / rowBytes) {
                        let runStart = o * rowBytes + starts[p]
                        let lo = Swift.max(runStart, offset), hi = Swift.min(runStart + runs[p], end)
                        guard lo < hi else { continue }
                        let from = o * runs[p] + (lo - runStart)
                        (dst.baseAddress! + (lo - offset)).copyMemory(from: src.baseAddress! + from, byteCount: hi - lo)
                    }
                }
            }
        }
        return try Tensor(storage: Storage(deferred: deferred), dtype: first.dtype, shape: shape)
    }

    /// `a + b` elementwise, rounded as PyTorch rounds on CPU: f32 and f64 natively; f16 and bf16
    /// through f32 with round-to-nearest-even (a sum of two such values rounded once to f32 and
    /// then to the narrow type equals the correctly rounded sum).
    static func add(_ a: Tensor, _ b: Tensor, names: (String, String)) throws -> Tensor {
        guard a.dtype == b.dtype, a.shape == b.shape else {
            throw LayoutError.badTensor(name: names.1, detail: "\(b.dtype) \(b.shape) cannot be added to '\(names.0)' (\(a.dtype) \(a.shape))")
        }
        let n = a.elementCount
        let out = Storage(byteCount: n * a.dtype.size)
        let dst = out.mutableBytes
        try a.withContiguousBytes { x in
            try b.withContiguousBytes { y in
                switch a.dtype {
                case .f32:
                    for i in 0..<n {
                        let s = x.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) + y.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
                        dst.storeBytes(of: s, toByteOffset: 4 * i, as: Float.self)
                    }
                case .f64:
                    for i in 0..<n {
                        let s = x.loadUnaligned(fromByteOffset: 8 * i, as: Double.self) + y.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)
                        dst.storeBytes(of: s, toByteOffset: 8 * i, as: Double.self)
                    }
                case .f16:
                    for i in 0..<n {
                        let s = DTypeConversion.float(fromHalf: x.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                            + DTypeConversion.float(fromHalf: y.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                        dst.storeBytes(of: DTypeConversion.halfBits(s), toByteOffset: 2 * i, as: UInt16.self)
                    }
                case .bf16:
                    for i in 0..<n {
                        let s = DTypeConversion.float(fromBFloat16: x.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                            + DTypeConversion.float(fromBFloat16: y.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                        dst.storeBytes(of: DTypeConversion.bfloat16Bits(s), toByteOffset: 2 * i, as: UInt16.self)
                    }
                default:
                    throw LayoutError.badTensor(name: names.0, detail: "cannot add \(a.dtype) tensors (floating point only)")
                }
            }
        }
        return try Tensor(storage: out, dtype: a.dtype, shape: a.shape)
    }

    /// The same elements under another shape (`reshape` of a contiguous tensor: a view).
    static func reshaped(_ t: Tensor, to dims: [Int], name: String) throws -> Tensor {
        let shape = Shape(dims)
        guard shape.elementCount == t.elementCount else {
            throw LayoutError.badTensor(name: name, detail: "shape \(t.shape) cannot become \(shape)")
        }
        let c = t.isContiguous ? t : t.contiguous()
        return try Tensor(storage: c.storage, dtype: c.dtype, shape: shape, offset: c.offset)
    }

    /// A tensor filled with zero bytes (+0.0 in every floating-point type).
    static func zeros(like t: Tensor, shape: Shape) throws -> Tensor {
        try Tensor(storage: Storage(byteCount: shape.elementCount * t.dtype.size), dtype: t.dtype, shape: shape)
    }
}
