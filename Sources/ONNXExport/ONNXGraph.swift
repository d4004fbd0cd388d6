import Formats
import TensorStore

/// An ONNX model as Swift values: what the exporter builds and `ONNXProtoWriter` serializes.
/// Only the parts of ModelProto DinoKit writes are modelled.
public struct ONNXModel: Sendable {
    public var irVersion: Int
    public var opset: Int
    public var producerName: String
    public var producerVersion: String
    public var docString: String
    /// metadata_props, in order.
    public var metadata: [(key: String, value: String)]
    public var graph: ONNXGraph
}

public struct ONNXGraph: Sendable {
    public var name: String
    public var nodes: [ONNXNode] = []
    public var initializers: [ONNXInitializer] = []
    public var inputs: [ONNXValueInfo] = []
    public var outputs: [ONNXValueInfo] = []

    public init(name: String) { self.name = name }

    public func initializer(named name: String) -> ONNXInitializer? { initializers.first { $0.name == name } }
}

public struct ONNXNode: Sendable {
    public var opType: String
    public var name: String
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [ONNXAttribute]
}

public struct ONNXAttribute: Sendable {
    public enum Value: Sendable {
        case int(Int)
        case float(Float)
        case string(String)
        case ints([Int])
        case graph(ONNXGraph)
    }

    public var name: String
    public var value: Value

    public init(_ name: String, _ value: Value) {
        self.name = name
        self.value = value
    }

    public static func int(_ name: String, _ v: Int) -> ONNXAttribute { ONNXAttribute(name, .int(v)) }
    public static func float(_ name: String, _ v: Float) -> ONNXAttribute { ONNXAttribute(name, .float(v)) }
    public static func string(_ name: String, _ v: String) -> ONNXAttribute { ONNXAttribute(name, .string(v)) }
    public static func ints(_ name: String, _ v: [Int]) -> ONNXAttribute { ONNXAttribute(name, .ints(v)) }
}

/// A graph input or output: element type and shape (dimensions fixed, symbolic or unknown).
public struct ONNXValueInfo: Sendable, Equatable {
    public var name: String
    public var elementType: Int32
    public var dims: [ONNXDimension]

    public init(name: String, elementType: Int32 = ONNXDataType.float, dims: [ONNXDimension]) {
        self.name = name
        self.elementType = elementType
        self.dims = dims
    }
}

/// A named tensor stored in the model. The tensor is contiguous; its bytes are written as
/// raw_data (little-endian, as ONNX requires) or to the external data file.
public struct ONNXInitializer: Sendable {
    public var name: String
    public var tensor: Tensor

    public init(name: String, tensor: Tensor) {
        self.name = name
        self.tensor = tensor.contiguous()
    }
}
