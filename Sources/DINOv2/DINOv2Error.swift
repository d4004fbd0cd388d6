import TensorStore

/// What can go wrong building or running a DINOv2 or DINOv3 backbone. Each case names the tensor or input
/// at fault and what was expected, so the message alone tells the user what to fix.
public enum DINOv2Error: Error, CustomStringConvertible, Equatable {
    /// A weight the architecture needs is not in the store.
    case missingWeight(name: String, expected: String)
    /// A weight is present but has the wrong shape.
    case weightShape(name: String, shape: [Int], expected: String)
    /// A weight is not a floating-point tensor.
    case weightDType(name: String, dtype: DType)
    /// A weight's values cannot be right (a NaN in DINOv3's `bias_mask`).
    case invalidWeight(name: String, reason: String)
    /// The store's shapes do not describe a backbone DinoKit can run (e.g. heads do not divide D).
    case unsupportedArchitecture(String)
    /// The image batch is not (B, channels, H, W) of a floating-point type.
    case inputShape(shape: [Int], expected: String)
    case inputDType(DType)
    case channelCount(got: Int, expected: Int)
    /// H or W is not a positive multiple of the patch size.
    case imageSize(height: Int, width: Int, patch: Int)
    /// Masks must be bool (B, h·w).
    case maskShape(shape: [Int], expected: [Int])
    case maskDType(DType)
    /// Masks were given but the weights have no `mask_token` (e.g. a timm-layout checkpoint).
    case noMaskToken
    /// An `intermediateLayers` selection the official code would reject.
    case layerSelection(String)
    /// The official code asserts the interpolated grid has h × w cells; a scale factor that
    /// floors to another size fails the same way here.
    case interpolationSize(got: [Int], expected: [Int])
    /// The batch is too large for 32-bit BLAS indexing.
    case inputTooLarge(String)

    public var description: String {
        switch self {
        case let .missingWeight(name, expected):
            return "missing weight '\(name)' (expected shape \(expected))"
        case let .weightShape(name, shape, expected):
            return "weight '\(name)' has shape \(shape), expected \(expected)"
        case let .weightDType(name, dtype):
            return "weight '\(name)' has dtype \(dtype), expected a floating-point type"
        case let .invalidWeight(name, reason):
            return "weight '\(name)': \(reason)"
        case let .unsupportedArchitecture(detail):
            return "unsupported DINOv2/DINOv3 architecture: \(detail)"
        case let .inputShape(shape, expected):
            return "input has shape \(shape), expected \(expected)"
        case let .inputDType(dtype):
            return "input has dtype \(dtype), expected a floating-point type (F32, F16, BF16, F64)"
        case let .channelCount(got, expected):
            return "input has \(got) channels, the model expects \(expected) (input shape is (B, \(expected), H, W))"
        case let .imageSize(height, width, patch):
            return "input size \(height)x\(width) is not a positive multiple of the patch size \(patch) in both dimensions (resize or crop it)"
        case let .maskShape(shape, expected):
            return "masks have shape \(shape), expected \(expected) (batch, patches)"
        case let .maskDType(dtype):
            return "masks have dtype \(dtype), expected BOOL"
        case .noMaskToken:
            return "masks were given but the weights have no 'mask_token' (expected shape (1, D))"
        case let .layerSelection(detail):
            return "invalid intermediate layer selection: \(detail)"
        case let .interpolationSize(got, expected):
            return "position-embedding interpolation produced a \(got) grid, expected \(expected)"
        case let .inputTooLarge(detail):
            return "input too large: \(detail)"
        }
    }
}
