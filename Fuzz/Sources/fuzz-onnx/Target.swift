import Formats
import FuzzSupport

/// The separator between the model and its external data file in an input.
let separator = Array("DKFUZZ-EXTERNAL-DATA".utf8)

/// An ONNX model: the protobuf wire walker over ModelProto / GraphProto / TensorProto, typed and
/// raw initializer data, and external data. An input is `model [DKFUZZ-EXTERNAL-DATA data]`: the
/// model is written as `model.onnx` and what follows the separator, if anything, as `weights.bin`
/// beside it (the location the seed models name).
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let (model, external) = Fuzz.split(Fuzz.input(data, size), at: separator)
    if let external { Fuzz.write(external, named: "weights.bin") } else { Fuzz.remove("weights.bin") }
    let path = Fuzz.write(model, named: "model.onnx")
    if let file = try? ONNXModelReader.readModel(path: path) {
        Fuzz.touch(file.initializers)
        Fuzz.blackHole(file.graphSummary)
        if let store = try? ONNXModelReader.weights(of: file) { Fuzz.touch(store) }
    }
    return 0
}
