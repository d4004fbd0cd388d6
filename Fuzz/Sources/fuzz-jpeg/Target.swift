import FuzzSupport
import Images

/// JPEG decoding as `ImageDecoder` does it for files starting FF D8 FF: marker structure,
/// libjpeg-turbo driven so it never exits, colour spaces (grey, YCbCr, CMYK, YCCK), EXIF
/// orientation, progressive and truncated streams.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    Fuzz.blackHole(try? JPEGDecoder.decode(Fuzz.input(data, size), file: "input.jpg"))
    return 0
}
