import Foundation
import FuzzSupport
import Training

/// A training run's config (`--config run.json` / `run.yaml`): the same bytes through the JSON
/// path (`SSLRunConfig.load(json:)`: unknown keys, types, validation) and the YAML path (Yams,
/// then the JSON checks).
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = Fuzz.input(data, size)
    Fuzz.blackHole(try? SSLRunConfig.load(json: Data(bytes), file: "input.json"))
    Fuzz.blackHole(try? SSLRunConfig.load(yaml: String(decoding: bytes, as: UTF8.self), file: "input.yaml"))
    return 0
}
