import Formats
import FuzzSupport

/// A `.npz` archive: the zip directory as libzip reads it, stored and deflated members (declared
/// sizes against what the archive can hold), and each member as a `.npy`.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let path = Fuzz.write(Fuzz.input(data, size), named: "input.npz")
    if let store = try? NPZ.read(path: path) { Fuzz.touch(store) }
    return 0
}
