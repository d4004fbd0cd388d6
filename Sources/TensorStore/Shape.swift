/// A tensor shape: sizes per dimension, outermost first (PyTorch / NumPy C order).
public struct Shape: Hashable, Sendable, ExpressibleByArrayLiteral, CustomStringConvertible, RandomAccessCollection {
    public var dims: [Int]

    public init(_ dims: [Int]) { self.dims = dims }
    public init(arrayLiteral elements: Int...) { self.dims = elements }

    public var rank: Int { dims.count }

    /// Number of elements, or nil when a dimension is negative or the product overflows
    /// (shapes come from untrusted files, so the product is always checked).
    public var checkedElementCount: Int? {
        var n = 1
        for d in dims {
            guard d >= 0, let p = Checked.product(n, d) else { return nil }
            n = p
        }
        return n
    }

    /// Bytes of this shape laid out contiguously in `elementSize`-byte elements, or nil as for
    /// `checkedElementCount` (and when the byte count overflows). Readers compare it with the
    /// bytes a file gives a tensor; `ViewExtent` computes it for strided views.
    public func checkedByteCount(elementSize: Int) -> Int? {
        checkedElementCount.flatMap { Checked.product($0, elementSize) }
    }

    /// Number of elements. Only call on shapes already validated (see `checkedElementCount`).
    public var elementCount: Int { dims.reduce(1, *) }

    /// Row-major (C-order) strides in elements. Wrapping arithmetic: shapes from files may be
    /// absurd, and callers validate them with `checkedElementCount` before use.
    public var contiguousStrides: [Int] {
        var strides = [Int](repeating: 1, count: dims.count)
        var s = 1
        for i in stride(from: dims.count - 1, through: 0, by: -1) {
            strides[i] = s
            s = s &* Swift.max(dims[i], 1)
        }
        return strides
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { dims.count }
    public subscript(i: Int) -> Int {
        get { dims[i] }
        set { dims[i] = newValue }
    }

    public var description: String { "[" + dims.map(String.init).joined(separator: ", ") + "]" }
}
