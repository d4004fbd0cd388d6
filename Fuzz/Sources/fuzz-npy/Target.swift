import Formats
import FuzzSupport

/// A `.npy` file in memory: magic, version, header length, the header dict (descr, fortran_order,
/// shape) and the data it describes.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    if let tensor = try? NPY.decode(Fuzz.input(data, size), name: "input.npy") {
        Fuzz.blackHole(Fuzz.touch(tensor))
    }
    return 0
}
