import Formats
import FuzzSupport

/// Legacy `torch.save` streams (torch < 1.6): magic number, protocol version and sys info
/// pickles, the object pickle, the storage key list, then each storage as a length and raw
/// bytes. Zip inputs belong to fuzz-pth-zip and are skipped.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = Fuzz.input(data, size)
    guard !TorchCheckpoint.isZip(UnsafeRawBufferPointer(rebasing: bytes.prefix(64))) else { return -1 }
    let path = Fuzz.write(bytes, named: "input.pth")
    if let contents = try? TorchCheckpoint.read(path: path) {
        Fuzz.touch(contents.store)
        Fuzz.blackHole(contents.root)
    }
    return 0
}
