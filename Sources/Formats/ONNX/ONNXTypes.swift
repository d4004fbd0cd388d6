import TensorStore

/// ONNX `TensorProto.DataType` codes DinoKit maps to its own element types, both ways. Codes
/// without a DType (strings, complex, 4-bit and FNUZ floats) are refused by name when read.
public enum ONNXDataType {
    public static let float: Int32 = 1
    public static let uint8: Int32 = 2
    public static let int8: Int32 = 3
    public static let int64: Int32 = 7
    public static let bool: Int32 = 9
    public static let double: Int32 = 11

    static let table: [(Int32, DType)] = [
        (1, .f32), (2, .u8), (3, .i8), (4, .u16), (5, .i16), (6, .i32), (7, .i64), (9, .bool),
        (10, .f16), (11, .f64), (12, .u32), (13, .u64), (16, .bf16), (17, .f8e4m3), (19, .f8e5m2),
    ]

    /// The DType of an ONNX element-type code, or nil when DinoKit has none.
    public static func dtype(_ code: Int32) -> DType? {
        table.first { $0.0 == code }?.1
    }

    /// The ONNX code of a DType (every DType has one).
    public static func code(_ dtype: DType) -> Int32 {
        table.first { $0.1 == dtype }?.0 ?? 0
    }

    /// ONNX's own spelling (`FLOAT`, `INT64`) for reports.
    public static func name(_ code: Int32) -> String {
        let names: [Int32: String] = [
            0: "UNDEFINED", 1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32", 7: "INT64",
            8: "STRING", 9: "BOOL", 10: "FLOAT16", 11: "DOUBLE", 12: "UINT32", 13: "UINT64", 14: "COMPLEX64",
            15: "COMPLEX128", 16: "BFLOAT16", 17: "FLOAT8E4M3FN", 18: "FLOAT8E4M3FNUZ", 19: "FLOAT8E5M2",
            20: "FLOAT8E5M2FNUZ", 21: "UINT4", 22: "INT4", 23: "FLOAT4E2M1",
        ]
        return names[code] ?? "type \(code)"
    }
}

/// One dimension of a graph input or output: a fixed size, a named symbolic size (`batch`), or
/// unknown.
public enum ONNXDimension: Sendable, Hashable, CustomStringConvertible {
    case value(Int)
    case param(String)
    case unknown

    public var description: String {
        switch self {
        case let .value(v): return String(v)
        case let .param(p): return p
        case .unknown: return "?"
        }
    }
}
