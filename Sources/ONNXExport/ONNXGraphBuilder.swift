import Formats
import TensorStore

/// Builds an `ONNXGraph` node by node: fresh SSA names under a scope (`/blocks.3/attn`),
/// constants as initializers named `dinokit::const/...` (shared by value), and subgraphs (If
/// branches) that draw names from the same counter so no name repeats anywhere in the model.
final class ONNXGraphBuilder {
    private(set) var graph: ONNXGraph
    private let counter: Counter
    private var constants: [String: String] = [:]
    /// Where constants go: the root builder (subgraphs may read outer-scope initializers).
    private weak var root: ONNXGraphBuilder?

    final class Counter { var next = 0 }

    init(name: String) {
        graph = ONNXGraph(name: name)
        counter = Counter()
    }

    private init(name: String, parent: ONNXGraphBuilder) {
        graph = ONNXGraph(name: name)
        counter = parent.counter
        root = parent.root ?? parent
    }

    /// A builder for a subgraph of this graph.
    func subgraph(_ name: String) -> ONNXGraphBuilder { ONNXGraphBuilder(name: name, parent: self) }

    func fresh(_ scope: String, _ op: String) -> String {
        counter.next += 1
        return "\(scope)/\(op)_\(counter.next)"
    }

    /// Adds a node with one output; returns the output's name (`output` when given).
    @discardableResult
    func add(_ op: String, _ inputs: [String], scope: String, output: String? = nil,
             _ attributes: [ONNXAttribute] = []) -> String {
        let name = fresh(scope, op)
        let out = output ?? name
        graph.nodes.append(ONNXNode(opType: op, name: name, inputs: inputs, outputs: [out], attributes: attributes))
        return out
    }

    /// Adds a node with `outputs` outputs.
    func addMulti(_ op: String, _ inputs: [String], outputs: Int, scope: String,
                  _ attributes: [ONNXAttribute] = []) -> [String] {
        let name = fresh(scope, op)
        let outs = (0..<outputs).map { "\(name):\($0)" }
        graph.nodes.append(ONNXNode(opType: op, name: name, inputs: inputs, outputs: outs, attributes: attributes))
        return outs
    }

    func addInitializer(_ name: String, _ tensor: Tensor) {
        if let root { root.addInitializer(name, tensor); return }
        graph.initializers.append(ONNXInitializer(name: name, tensor: tensor))
    }

    func addInput(_ v: ONNXValueInfo) { graph.inputs.append(v) }
    func addOutput(_ v: ONNXValueInfo) { graph.outputs.append(v) }

    // MARK: - Constants

    /// An int64 constant: a 1-D tensor, or a scalar (rank 0) when `scalar`.
    func int64s(_ values: [Int], scalar: Bool = false) throws -> String {
        if let root { return try root.int64s(values, scalar: scalar) }
        let key = "i64\(scalar ? "s" : "")\(values)"
        if let name = constants[key] { return name }
        let name = ONNXModelReader.derivedPrefix + "const/" + (scalar ? "\(values[0])" : "[\(values.map(String.init).joined(separator: ","))]")
        var bytes = [UInt8]()
        for v in values { withUnsafeBytes(of: Int64(v).littleEndian) { bytes.append(contentsOf: $0) } }
        let t = try bytes.withUnsafeBytes { try Tensor(dtype: .i64, shape: scalar ? [] : [values.count], bytes: $0) }
        addInitializer(name, t)
        constants[key] = name
        return name
    }

    func int64(_ v: Int) throws -> String { try int64s([v], scalar: true) }

    /// A uint8 scalar (MatMulInteger's zero point).
    func uint8(_ v: UInt8) throws -> String {
        if let root { return try root.uint8(v) }
        let key = "u8s\(v)"
        if let name = constants[key] { return name }
        let name = ONNXModelReader.derivedPrefix + "const/u8(\(v))"
        let t = try [v].withUnsafeBytes { try Tensor(dtype: .u8, shape: [], bytes: $0) }
        addInitializer(name, t)
        constants[key] = name
        return name
    }

    /// A float constant (scalar or 1-D) of `dtype` F32 or F64.
    func floats(_ values: [Double], dtype: DType = .f32, scalar: Bool = false) throws -> String {
        if let root { return try root.floats(values, dtype: dtype, scalar: scalar) }
        let key = "\(dtype)\(scalar ? "s" : "")\(values.map { $0.bitPattern })"
        if let name = constants[key] { return name }
        let spelled = values.map { "\($0)" }.joined(separator: ",")
        let name = ONNXModelReader.derivedPrefix + "const/\(dtype.rawValue.lowercased())" + (scalar ? "(\(spelled))" : "[\(spelled)]")
        var bytes = [UInt8]()
        for v in values {
            if dtype == .f64 {
                withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
            } else {
                withUnsafeBytes(of: Float(v).bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
            }
        }
        let t = try bytes.withUnsafeBytes { try Tensor(dtype: dtype, shape: scalar ? [] : [values.count], bytes: $0) }
        addInitializer(name, t)
        constants[key] = name
        return name
    }
}
