/// Element-type conversion between the floating-point formats checkpoints use. Narrowing rounds to
/// nearest, ties to even, as PyTorch's `Tensor.to(dtype)` does; NaN stays NaN.
public enum DTypeConversion {
    /// bfloat16 bits of `x`, rounded to nearest even (quiet NaN preserved).
    @inline(__always)
    public static func bfloat16Bits(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: (bits >> 16) | 0x40) }
        let lsb = (bits >> 16) & 1
        let rounded = bits &+ 0x7FFF &+ lsb
        return UInt16(truncatingIfNeeded: rounded >> 16)
    }

    @inline(__always)
    public static func float(fromBFloat16 bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    @inline(__always)
    public static func float(fromHalf bits: UInt16) -> Float {
        Float(Float16(bitPattern: bits))
    }

    @inline(__always)
    public static func halfBits(_ x: Float) -> UInt16 { Float16(x).bitPattern }

    /// float8 e4m3fn (no infinities; 0x7F and 0xFF are NaN), as `torch.float8_e4m3fn`.
    public static func float(fromE4M3 b: UInt8) -> Float {
        let sign: Float = (b & 0x80) != 0 ? -1 : 1
        let e = Int((b >> 3) & 0xF), m = Int(b & 0x7)
        if e == 0xF && m == 0x7 { return .nan }
        if e == 0 { return sign * Float(m) * 0x1p-9 }
        return sign * (1 + Float(m) / 8) * Float(sign: .plus, exponent: e - 7, significand: 1)
    }

    /// float8 e5m2: the top byte of an IEEE half.
    public static func float(fromE5M2 b: UInt8) -> Float {
        float(fromHalf: UInt16(b) << 8)
    }

    /// Little-endian elements of `dtype` widened to Float.
    public static func floats(from src: UnsafeRawBufferPointer, dtype: DType) -> [Float] {
        let n = src.count / dtype.size
        return [Float](unsafeUninitializedCapacity: n) { out, initialized in
            switch dtype {
            case .f32: for i in 0..<n { out[i] = src.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) }
            case .f64: for i in 0..<n { out[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
            case .f16: for i in 0..<n { out[i] = float(fromHalf: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
            case .bf16: for i in 0..<n { out[i] = float(fromBFloat16: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
            case .f8e4m3: for i in 0..<n { out[i] = float(fromE4M3: src[i]) }
            case .f8e5m2: for i in 0..<n { out[i] = float(fromE5M2: src[i]) }
            case .bool, .u8: for i in 0..<n { out[i] = Float(src[i]) }
            case .i8: for i in 0..<n { out[i] = Float(Int8(bitPattern: src[i])) }
            case .i16: for i in 0..<n { out[i] = Float(src.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)) }
            case .u16: for i in 0..<n { out[i] = Float(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
            case .i32: for i in 0..<n { out[i] = Float(src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)) }
            case .u32: for i in 0..<n { out[i] = Float(src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)) }
            case .i64: for i in 0..<n { out[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)) }
            case .u64: for i in 0..<n { out[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)) }
            }
            initialized = n
        }
    }

    /// Whether `convert` handles the pair: F64, F32, F16 and BF16, either way.
    public static func converts(from: DType, to: DType) -> Bool {
        let floats: Set<DType> = [.f64, .f32, .f16, .bf16]
        return floats.contains(from) && floats.contains(to)
    }

    /// Converts between F64, F32, F16 and BF16. `dst` must hold count × target size bytes.
    public static func convert(_ src: UnsafeRawBufferPointer, from: DType, to: DType,
                               into dst: UnsafeMutableRawBufferPointer) throws {
        guard converts(from: from, to: to) else {
            throw TensorStoreError.unsupportedConversion(from: from, to: to)
        }
        let n = src.count / from.size
        precondition(dst.count == n * to.size)
        if from == to { dst.copyMemory(from: src); return }
        if from == .f64 && to == .f16 {
            // Round once, straight from double, as torch does for double -> half.
            for i in 0..<n {
                dst.storeBytes(of: Float16(src.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)).bitPattern,
                               toByteOffset: 2 * i, as: UInt16.self)
            }
            return
        }
        for i in 0..<n {
            let x: Float
            switch from {
            case .f32: x = src.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
            case .f16: x = float(fromHalf: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            case .bf16: x = float(fromBFloat16: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            default: // .f64 -> f32 or bf16 (bf16 goes through f32 as c10::BFloat16 does)
                x = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Double.self))
            }
            switch to {
            case .f32: dst.storeBytes(of: x, toByteOffset: 4 * i, as: Float.self)
            case .f16: dst.storeBytes(of: halfBits(x), toByteOffset: 2 * i, as: UInt16.self)
            case .bf16: dst.storeBytes(of: bfloat16Bits(x), toByteOffset: 2 * i, as: UInt16.self)
            default: dst.storeBytes(of: Double(x), toByteOffset: 8 * i, as: Double.self)
            }
        }
    }
}
