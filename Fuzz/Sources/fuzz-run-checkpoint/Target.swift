import FuzzSupport
import Training

/// A training run's checkpoint (`step-NNNNNN.safetensors`) as `RunCheckpoint.read` reads it: the
/// safetensors file, the metadata (format, step, optimizer steps, seed) and the run config JSON
/// carried in it.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let path = Fuzz.write(Fuzz.input(data, size), named: "step-000001.safetensors")
    if let (model, optimizer, info) = try? RunCheckpoint.read(path: path) {
        Fuzz.touch(model)
        Fuzz.touch(optimizer)
        Fuzz.blackHole(info)
    }
    return 0
}
