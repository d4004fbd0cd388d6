import Formats
import FuzzSupport

/// `torch.save` zip files (torch >= 1.6): the zip directory (sizes, offsets, counts, zip64), the
/// pickled object in `data.pkl`, storages mapped from `data/<key>`, tensor views on them. Inputs
/// that are not zips belong to fuzz-pth-legacy and are skipped.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = Fuzz.input(data, size)
    guard TorchCheckpoint.isZip(UnsafeRawBufferPointer(rebasing: bytes.prefix(64))) else { return -1 }
    let path = Fuzz.write(bytes, named: "input.pth")
    if let contents = try? TorchCheckpoint.read(path: path) {
        Fuzz.touch(contents.store)
        Fuzz.blackHole(contents.root)
    }
    return 0
}
