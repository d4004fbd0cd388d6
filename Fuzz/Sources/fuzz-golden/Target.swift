import DINOv2
import FuzzSupport

/// Files a manifest may name that exist in the target's folder (the seed manifests are rewritten
/// to name them by Fuzz/make-corpora).
let placeholders = ["model.safetensors", "a.npy", "b.npy", "c.npy", "masks.npy"]
let setUp: Void = {
    for name in placeholders { Fuzz.write([UInt8](), named: name) }
}()

/// A golden manifest (`dinokit-golden/1`, `manifest.json`) as `GoldenSet.load` reads it: the
/// JSON decoding, cases, inputs (file or synthetic), output keys and file references. Only the
/// manifest is read; the files it names are empty placeholders.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    setUp
    Fuzz.write(Fuzz.input(data, size), named: "manifest.json")
    Fuzz.blackHole(try? GoldenSet.load(directory: Fuzz.folder))
    return 0
}
