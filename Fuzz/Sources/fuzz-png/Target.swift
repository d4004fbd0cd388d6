import FuzzSupport
import Images

/// PNG decoding as `ImageDecoder` does it for files with the PNG signature: chunks and CRCs,
/// bit depths 1-16, palettes and tRNS, interlacing, gamma, to 8-bit RGB.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    Fuzz.blackHole(try? PNGDecoder.decode(Fuzz.input(data, size), file: "input.png"))
    return 0
}
