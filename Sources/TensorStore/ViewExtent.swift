/// How far a strided view reaches, with every step of arithmetic checked. Offsets, sizes and
/// strides come from files, so `offset + Σ (size - 1) × stride + 1` and `numel × element size`
/// can overflow; this is the one place that computes them (`Tensor.init` and the readers use it),
/// so there is no second copy of the bounds logic to get wrong.
public struct ViewExtent: Equatable, Sendable {
    /// Elements the view holds (the product of its shape).
    public let elementCount: Int
    /// Bytes of the view laid out contiguously: what materialising it allocates.
    public let byteCount: Int
    /// First storage byte the view addresses (0 for an empty view).
    public let startByte: Int
    /// One past the last storage byte the view addresses (0 for an empty view).
    public let endByte: Int

    /// Throws `TensorStoreError.invalidShape` for negative or mismatched dimensions and for any
    /// overflow; says nothing yet about whether a storage is long enough (compare `endByte`).
    public init(shape: [Int], strides: [Int], offset: Int, elementSize: Int) throws {
        func invalid(_ detail: String) -> TensorStoreError { .invalidShape(what: "tensor", detail: detail) }
        guard shape.count <= ViewExtent.maxRank else {
            throw invalid("\(shape.count) dimensions, more than the \(ViewExtent.maxRank) any real tensor has")
        }
        guard strides.count == shape.count else {
            throw invalid("shape \(Shape(shape)) has \(shape.count) dims but \(strides.count) strides")
        }
        guard let count = Shape(shape).checkedElementCount else {
            throw invalid("shape \(Shape(shape)) is negative or overflows")
        }
        guard offset >= 0, strides.allSatisfy({ $0 >= 0 }) else {
            throw invalid("negative offset \(offset) or strides \(strides)")
        }
        guard let bytes = Shape(shape).checkedByteCount(elementSize: elementSize) else {
            throw invalid("shape \(Shape(shape)) of \(elementSize)-byte elements is more than \(Int.max) bytes")
        }
        elementCount = count
        byteCount = bytes
        guard count > 0 else {
            startByte = 0
            endByte = 0
            return
        }
        // Highest element index addressed: offset + Σ (size - 1) × stride; the end is one past it.
        var last = offset
        for (d, s) in zip(shape, strides) {
            guard let step = Checked.product(d - 1, s), let next = Checked.sum(last, step) else {
                throw invalid("strides \(strides) overflow for shape \(Shape(shape)) at offset \(offset)")
            }
            last = next
        }
        guard let endElement = Checked.sum(last, 1), let end = Checked.product(endElement, elementSize) else {
            throw invalid("shape \(Shape(shape)) strides \(strides) offset \(offset) reaches past \(Int.max) bytes")
        }
        // offset <= last, so offset × elementSize <= end cannot overflow.
        startByte = offset * elementSize
        endByte = end
    }

    /// Dimensions a view may have. Materialising walks the dimensions recursively, and a file can
    /// name a shape of 100k size-1 dimensions; NumPy stops at 64 as well.
    public static let maxRank = 64

    /// True when materialising the view needs more bytes than the storage range it addresses:
    /// only overlapping views (stride 0, `expand()`) do that, and only they can turn a small file
    /// into a huge allocation.
    public var amplifies: Bool { byteCount > endByte - startByte }
}

/// Overflow-checked arithmetic for sizes read from files: nil instead of a trap.
public enum Checked {
    public static func sum(_ a: Int, _ b: Int) -> Int? {
        let (r, o) = a.addingReportingOverflow(b)
        return o ? nil : r
    }

    public static func product(_ a: Int, _ b: Int) -> Int? {
        let (r, o) = a.multipliedReportingOverflow(by: b)
        return o ? nil : r
    }
}
