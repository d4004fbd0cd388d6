import Formats
import TensorStore

/// N feature vectors of width D, float32, row-major: what the classifiers read. Features of any
/// floating dtype are widened or narrowed to float32 once (DINOv2 features are float32).
public struct FeatureMatrix: Sendable, Equatable {
    public let rows: Int
    public let columns: Int
    public var values: [Float]

    public init(rows: Int, columns: Int, values: [Float]) throws {
        let (count, overflow) = rows.multipliedReportingOverflow(by: columns)
        guard rows >= 0, columns >= 0, !overflow, count == values.count else {
            throw EvaluationError.badFeatures(what: "feature matrix", detail: "\(values.count) values do not make \(rows) x \(columns)")
        }
        self.rows = rows
        self.columns = columns
        self.values = values
    }

    /// A 2-D floating-point tensor (N, D).
    public init(_ tensor: Tensor, name: String = "features") throws {
        guard tensor.shape.rank == 2 else {
            throw EvaluationError.badFeatures(what: name, detail: "shape \(tensor.shape) is not (N, D)")
        }
        guard tensor.dtype.isFloatingPoint else {
            throw EvaluationError.badFeatures(what: name, detail: "dtype \(tensor.dtype) is not floating point")
        }
        let values = tensor.floats()
        guard values.allSatisfy(\.isFinite) else {
            throw EvaluationError.badFeatures(what: name, detail: "holds NaN or infinite values")
        }
        try self.init(rows: tensor.shape[0], columns: tensor.shape[1], values: values)
    }

    /// Reads an (N, D) `.npy`.
    public static func load(npy path: String) throws -> FeatureMatrix {
        try FeatureMatrix(try NPY.read(path: path), name: path)
    }

    public func tensor() throws -> Tensor {
        try Tensor(shape: [rows, columns], floats: values)
    }

    /// Row `i` as an array (for tests and small reports).
    public func row(_ i: Int) -> ArraySlice<Float> { values[(i * columns)..<((i + 1) * columns)] }
}

/// Integer class labels from a 1-D `.npy` (any integer dtype, or bool).
public enum LabelFile {
    public static func load(npy path: String) throws -> [Int] {
        let t = try NPY.read(path: path)
        return try labels(t, name: path)
    }

    public static func labels(_ t: Tensor, name: String) throws -> [Int] {
        guard t.shape.rank == 1 else {
            throw EvaluationError.badFeatures(what: name, detail: "labels must be 1-D, got shape \(t.shape)")
        }
        let n = t.shape[0]
        return try t.withContiguousBytes { raw -> [Int] in
            switch t.dtype {
            case .u8, .bool: return raw.map { Int($0) }
            case .i8: return raw.bindMemory(to: Int8.self).map { Int($0) }
            case .i16: return (0..<n).map { Int(raw.loadUnaligned(fromByteOffset: 2 * $0, as: Int16.self)) }
            case .u16: return (0..<n).map { Int(raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)) }
            case .i32: return (0..<n).map { Int(raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
            case .u32: return (0..<n).map { Int(raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)) }
            case .i64: return (0..<n).map { Int(raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
            case .u64:
                return try (0..<n).map {
                    let v = raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self)
                    guard v <= UInt64(Int.max) else { throw EvaluationError.badFeatures(what: name, detail: "label \($0) is \(v), too large") }
                    return Int(v)
                }
            default:
                throw EvaluationError.badFeatures(what: name, detail: "labels must be integers, got dtype \(t.dtype)")
            }
        }
    }

    /// Writes labels as an int64 `.npy` (atomically).
    public static func write(_ labels: [Int], to path: String) throws {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(labels.count * 8)
        for l in labels { withUnsafeBytes(of: Int64(l).littleEndian) { bytes += $0 } }
        let t = try bytes.withUnsafeBytes { try Tensor(dtype: .i64, shape: [labels.count], bytes: $0) }
        try NPY.write(t, to: path)
    }
}
