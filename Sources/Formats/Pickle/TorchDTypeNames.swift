import TensorStore

/// torch's names for dtypes and legacy storage classes, and how they map onto `DType`.
public enum TorchDTypeNames {
    /// Legacy typed storage class -> torch dtype name (`torch/storage.py` `_dtype_to_storage_type_map`).
    public static let storageClassDType: [String: String] = [
        "DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16",
        "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
        "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool",
        "ComplexFloatStorage": "complex64", "ComplexDoubleStorage": "complex128",
        "QUInt8Storage": "quint8", "QInt8Storage": "qint8", "QInt32Storage": "qint32",
        "QUInt4x2Storage": "quint4x2", "QUInt2x4Storage": "quint2x4",
    ]

    /// Every torch dtype name a `GLOBAL torch <name>` may push (allow-listed as torch does).
    public static let knownDTypes: Set<String> = {
        var s: Set<String> = [
            "float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool",
            "complex32", "complex64", "complex128", "uint16", "uint32", "uint64",
            "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu",
            "float4_e2m1fn_x2", "bits1x8", "bits2x4", "bits4x2", "bits8", "bits16",
            "quint8", "qint8", "qint32", "quint4x2", "quint2x4",
            // Python-level aliases torch also exposes and str() may print.
            "float", "double", "half", "long", "int", "short", "cfloat", "cdouble",
        ]
        for x in 1...7 { s.insert("uint\(x)"); s.insert("int\(x)") }
        return s
    }()

    private static let toDType: [String: DType] = [
        "float64": .f64, "double": .f64, "float32": .f32, "float": .f32, "float16": .f16, "half": .f16,
        "bfloat16": .bf16, "int64": .i64, "long": .i64, "int32": .i32, "int": .i32, "int16": .i16,
        "short": .i16, "int8": .i8, "uint8": .u8, "bool": .bool, "uint16": .u16, "uint32": .u32,
        "uint64": .u64, "float8_e4m3fn": .f8e4m3, "float8_e5m2": .f8e5m2,
    ]

    /// Element size in bytes for dtypes a storage may hold (nil for sub-byte or unknown ones).
    public static func elementSize(torchName: String) -> Int? {
        if let d = toDType[torchName] { return d.size }
        switch torchName {
        case "complex32": return 4
        case "complex64", "cfloat": return 8
        case "complex128", "cdouble": return 16
        case "quint8", "qint8", "quint4x2", "quint2x4", "bits8", "bits1x8", "bits2x4", "bits4x2",
             "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu", "float4_e2m1fn_x2": return 1
        case "qint32": return 4
        case "bits16": return 2
        default: return nil
        }
    }

    public static func dtype(torchName: String) -> DType? { toDType[torchName] }

    /// The torch dtype name DinoKit writes for a DType.
    public static func torchName(_ dtype: DType) -> String {
        switch dtype {
        case .f64: return "float64"
        case .f32: return "float32"
        case .f16: return "float16"
        case .bf16: return "bfloat16"
        case .i64: return "int64"
        case .i32: return "int32"
        case .i16: return "int16"
        case .i8: return "int8"
        case .u8: return "uint8"
        case .bool: return "bool"
        case .u16: return "uint16"
        case .u32: return "uint32"
        case .u64: return "uint64"
        case .f8e4m3: return "float8_e4m3fn"
        case .f8e5m2: return "float8_e5m2"
        }
    }

    /// The legacy storage class for a DType, nil when torch has none (then `_rebuild_tensor_v3`
    /// with an `UntypedStorage` is used, as torch does).
    public static func storageClass(_ dtype: DType) -> String? {
        switch dtype {
        case .f64: return "DoubleStorage"
        case .f32: return "FloatStorage"
        case .f16: return "HalfStorage"
        case .bf16: return "BFloat16Storage"
        case .i64: return "LongStorage"
        case .i32: return "IntStorage"
        case .i16: return "ShortStorage"
        case .i8: return "CharStorage"
        case .u8: return "ByteStorage"
        case .bool: return "BoolStorage"
        case .u16, .u32, .u64, .f8e4m3, .f8e5m2: return nil
        }
    }
}
