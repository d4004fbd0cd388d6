import OrderedCollections

/// An ordered collection of named tensors plus string metadata: what a state dict or a
/// safetensors file holds. Order is the order tensors were read or inserted.
public struct TensorStore: Sendable {
    public private(set) var tensors: OrderedDictionary<String, Tensor> = [:]
    public var metadata: OrderedDictionary<String, String> = [:]

    public init() {}

    public init(_ pairs: [(String, Tensor)], metadata: OrderedDictionary<String, String> = [:]) throws {
        for (name, t) in pairs { try insert(t, named: name) }
        self.metadata = metadata
    }

    public var names: [String] { Array(tensors.keys) }
    public var count: Int { tensors.count }
    public var isEmpty: Bool { tensors.isEmpty }

    public subscript(name: String) -> Tensor? {
        get { tensors[name] }
        set { tensors[name] = newValue }
    }

    /// Adds a tensor; a name may appear once.
    public mutating func insert(_ tensor: Tensor, named name: String) throws {
        guard tensors[name] == nil else { throw TensorStoreError.duplicateName(name) }
        tensors[name] = tensor
    }

    @discardableResult
    public mutating func remove(_ name: String) -> Tensor? { tensors.removeValue(forKey: name) }

    /// Total number of elements over all tensors.
    public var parameterCount: Int { tensors.values.reduce(0) { $0 + $1.elementCount } }

    /// Total bytes of all tensors' elements.
    public var byteCount: Int { tensors.values.reduce(0) { $0 + $1.byteCount } }

    /// The store with every floating-point tensor converted to `dtype` (others untouched). The
    /// conversion happens when a tensor's elements are read (`Tensor.converting(to:)`): writing
    /// the result converts one tensor at a time.
    public func converted(to dtype: DType) throws -> TensorStore {
        var out = TensorStore()
        out.metadata = metadata
        for (name, t) in tensors {
            try out.insert(t.dtype.isFloatingPoint && t.dtype != dtype ? t.converting(to: dtype) : t, named: name)
        }
        return out
    }
}
