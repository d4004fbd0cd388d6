import Formats
import FuzzSupport

/// The safe unpickler with torch's allow-list (`torch.load(weights_only=True)`), on raw pickle
/// bytes: memo, marks, nesting, LONG opcodes, dict keys, persistent ids, reduce chains.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = Array(Fuzz.input(data, size))
    Fuzz.blackHole(try? Unpickler.unpickle(bytes))
    return 0
}
