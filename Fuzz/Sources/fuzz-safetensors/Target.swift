import Formats
import FuzzSupport

/// safetensors: the 8-byte header length, the JSON header (offsets, shapes, dtypes, duplicate
/// keys, `__metadata__`), and the data section the tensors view.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let path = Fuzz.write(Fuzz.input(data, size), named: "input.safetensors")
    if let store = try? Safetensors.read(path: path) { Fuzz.touch(store) }
    return 0
}
