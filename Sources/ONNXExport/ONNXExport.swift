// The ONNXExport module: DINOv2 graph -> ONNX ModelProto. See DESIGN.md.
import ONNXProto

/// Smoke check that the generated protobuf-c code links; replaced by the exporter.
func _onnxProtoLinks() -> Int {
    var m = Onnx__ModelProto()
    onnx__model_proto__init(&m)
    return Int(onnx__model_proto__get_packed_size(&m))
}
