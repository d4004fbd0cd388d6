/// A strided view over a `Storage`: what `torch.Tensor` is over its storage. Offsets and strides
/// are in elements, as PyTorch records them. Views are validated when made, so every element a
/// tensor addresses lies inside its storage.
public struct Tensor: @unchecked Sendable {
    public let dtype: DType
    public let shape: Shape
    public let strides: [Int]
    public let offset: Int
    public let storage: Storage

    /// A checked view. Throws when the shape or strides are negative, overflow, or address bytes
    /// outside the storage, and when the view overlaps itself (stride 0, `expand()`) so that
    /// materialising it would allocate more than `limits.memoryBytes` (see `ReadLimits`).
    public init(storage: Storage, dtype: DType, shape: Shape, strides: [Int]? = nil, offset: Int = 0,
                limits: ReadLimits = .default) throws {
        let strides = strides ?? shape.contiguousStrides
        let extent = try ViewExtent(shape: shape.dims, strides: strides, offset: offset, elementSize: dtype.size)
        guard extent.endByte <= storage.count else {
            throw TensorStoreError.outOfBounds(
                what: "tensor view",
                detail: "shape \(shape) strides \(strides) offset \(offset) of \(dtype) needs \(extent.endByte) bytes, storage has \(storage.count)")
        }
        if extent.amplifies && extent.byteCount > limits.memoryBytes {
            throw TensorStoreError.memoryLimitExceeded(
                what: "materialising the overlapping view shape \(shape) strides \(strides) of \(dtype)",
                bytes: extent.byteCount, limit: limits.memoryBytes)
        }
        self.dtype = dtype
        self.shape = shape
        self.strides = strides
        self.offset = offset
        self.storage = storage
    }

    /// A new contiguous tensor that owns a copy of `bytes` (length must be numel × element size).
    public init(dtype: DType, shape: Shape, bytes: UnsafeRawBufferPointer) throws {
        guard shape.checkedByteCount(elementSize: dtype.size) == bytes.count else {
            throw TensorStoreError.invalidShape(what: "tensor", detail: "\(bytes.count) bytes do not hold \(shape) of \(dtype)")
        }
        try self.init(storage: Storage(copying: bytes), dtype: dtype, shape: shape)
    }

    /// A new contiguous float32 tensor.
    public init(shape: Shape, floats: [Float]) throws {
        guard shape.checkedElementCount == floats.count else {
            throw TensorStoreError.invalidShape(what: "tensor", detail: "\(floats.count) values do not fill \(shape)")
        }
        let s = Storage(byteCount: floats.count * 4)
        floats.withUnsafeBytes { if $0.count > 0 { s.mutableBytes.copyMemory(from: $0) } }
        try self.init(storage: s, dtype: .f32, shape: shape)
    }

    public var elementCount: Int { shape.elementCount }
    public var byteCount: Int { elementCount * dtype.size }

    /// True when the elements are laid out in C order without gaps (size-1 dims may have any stride).
    public var isContiguous: Bool {
        if elementCount == 0 { return true }
        var expected = 1
        for i in stride(from: shape.rank - 1, through: 0, by: -1) where shape[i] != 1 {
            if strides[i] != expected { return false }
            expected *= shape[i]
        }
        return true
    }

    /// The tensor's elements in C order. A view into the storage when contiguous (no copy),
    /// otherwise a freshly materialised copy.
    public func withContiguousBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        if byteCount == 0 { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        if isContiguous {
            let start = offset * dtype.size
            return try storage.withBytes(start..<(start + byteCount), body)
        }
        return try contiguous().withContiguousBytes(body)
    }

    /// Gives back the resident pages of the file bytes this view reads (`Storage.dropResidentPages`):
    /// called once a tensor of a mapped checkpoint has been bound or written.
    public func dropResidentPages() {
        storage.dropResidentPages(isContiguous && byteCount > 0 ? (offset * dtype.size)..<(offset * dtype.size + byteCount) : nil)
    }

    /// Self when already contiguous and starting at offset 0 of a storage it fills; otherwise a
    /// compact C-order copy in owned memory.
    public func contiguous() -> Tensor {
        if isContiguous { return self }
        let out = Storage(byteCount: byteCount)
        storage.withBytes { copyElements(from: $0.baseAddress!, to: out.mutableBytes.baseAddress!) }
        // Cannot fail: a fresh contiguous storage of exactly byteCount bytes.
        return try! Tensor(storage: out, dtype: dtype, shape: shape)
    }

    /// The view's elements from `src` (its storage's bytes) to `dst` in C order, in work
    /// proportional to the bytes written, whatever the view: dimensions that are contiguous in
    /// each other merge into one, a run of stride 1 is one copy, and a dimension of stride 0
    /// (an expanded tensor) writes its slab once and then doubles it, so a few hundred bytes of
    /// checkpoint that claim a 64 MB broadcast cost one 64 MB fill, not 16 M small copies.
    private func copyElements(from src: UnsafeRawPointer, to dst: UnsafeMutableRawPointer) {
        let es = dtype.size
        guard shape.rank > 0 else {
            dst.copyMemory(from: src + offset * es, byteCount: es)
            return
        }
        guard elementCount > 0 else { return }
        // (size, stride) from outer to inner, size-1 dimensions dropped, contiguous ones merged.
        var dims: [(n: Int, s: Int)] = []
        for d in 0..<shape.rank where shape[d] != 1 {
            let (n, s) = (shape[d], strides[d])
            if let last = dims.last, last.s == n * s {
                dims[dims.count - 1] = (last.n * n, s)
            } else {
                dims.append((n, s))
            }
        }
        if dims.isEmpty { dims = [(1, 1)] }
        var written = 0
        // `copies` slabs of `slab` bytes at `start`, the first already written.
        func replicate(from start: Int, slab: Int, copies: Int) {
            var have = 1
            while have < copies {
                let k = Swift.min(have, copies - have)
                (dst + start + have * slab).copyMemory(from: dst + start, byteCount: k * slab)
                have += k
            }
            written = start + copies * slab
        }
        func walk(_ level: Int, _ base: Int) {
            let (n, s) = dims[level]
            if level == dims.count - 1 {
                switch s {
                case 1:
                    (dst + written).copyMemory(from: src + base * es, byteCount: n * es)
                    written += n * es
                case 0:
                    let start = written
                    (dst + written).copyMemory(from: src + base * es, byteCount: es)
                    replicate(from: start, slab: es, copies: n)
                default:
                    for i in 0..<n {
                        (dst + written).copyMemory(from: src + (base + i * s) * es, byteCount: es)
                        written += es
                    }
                }
            } else if s == 0 {
                let start = written
                walk(level + 1, base)
                replicate(from: start, slab: written - start, copies: n)
            } else {
                for i in 0..<n { walk(level + 1, base + i * s) }
            }
        }
        walk(0, offset)
    }

    /// True when both tensors have the same dtype, shape and element bytes (layout may differ).
    public func bitwiseEqual(_ other: Tensor) -> Bool {
        guard dtype == other.dtype, shape == other.shape else { return false }
        return withContiguousBytes { a in other.withContiguousBytes { b in a.elementsEqual(b) } }
    }

    /// The elements widened to Float (f32, f16, bf16, f64, f8 and integer types).
    public func floats() -> [Float] {
        withContiguousBytes { DTypeConversion.floats(from: $0, dtype: dtype) }
    }

    /// A contiguous copy in another dtype. Floating-point narrowing rounds to nearest, ties to even.
    public func converted(to target: DType) throws -> Tensor {
        if target == dtype { return contiguous() }
        let out = Storage(byteCount: elementCount * target.size)
        try withContiguousBytes { src in
            try DTypeConversion.convert(src, from: dtype, to: target, into: out.mutableBytes)
        }
        return try Tensor(storage: out, dtype: target, shape: shape)
    }

    /// `converted(to:)` computed each time the elements are read (a deferred storage, see
    /// `DeferredBytes`) rather than now: what converting a whole checkpoint uses, so that only
    /// the tensor being written is ever converted in memory. Throws now for a pair of dtypes
    /// `DTypeConversion` cannot convert. A non-contiguous view is converted now.
    public func converting(to target: DType) throws -> Tensor {
        guard target != dtype else { return self }
        guard DTypeConversion.converts(from: dtype, to: target) else {
            throw TensorStoreError.unsupportedConversion(from: dtype, to: target)
        }
        guard isContiguous else { return try converted(to: target) }
        let source = self, from = dtype
        let deferred = DeferredBytes(count: elementCount * target.size, sources: [storage]) { dst, start in
            // Element-aligned: views of the result address whole elements.
            let first = start / target.size, n = dst.count / target.size
            let begin = (source.offset + first) * from.size
            source.storage.withBytes(begin..<(begin + n * from.size)) { src in
                try! DTypeConversion.convert(src, from: from, to: target, into: dst)  // the pair was checked above
            }
        }
        return try Tensor(storage: Storage(deferred: deferred), dtype: target, shape: shape)
    }
}
