import Formats
import FuzzSupport

/// The strict JSON reader as the transformers folder reader drives it. The input is written as
/// both `config.json` and `model.safetensors.index.json` of a folder with no `model.safetensors`:
/// `HFFolder.read` parses the config (top-level scalars, string arrays, skipped nesting, duplicate
/// keys, UTF-8) and, when that passes, the shard index (`weight_map`, shard names).
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = Fuzz.input(data, size)
    Fuzz.write(bytes, named: HFFolder.configFile)
    Fuzz.write(bytes, named: HFFolder.indexFile)
    if let store = try? HFFolder.read(path: Fuzz.folder) { Fuzz.touch(store) }
    return 0
}
