import Formats
import FuzzSupport

/// NumPy array pickles (the CIFAR-10 python batches): the unpickler with NumPy's globals allowed,
/// then every value that looks like an array read out by `NumpyPickle.array`.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = Array(Fuzz.input(data, size))
    guard let value = try? NumpyPickle.unpickle(bytes) else { return 0 }
    Fuzz.blackHole(try? NumpyPickle.array(value))
    // A CIFAR batch is a dict: its "data" and "labels" entries are what the reader looks at.
    if case let .dict(d) = value {
        for entry in d.entries { Fuzz.blackHole(try? NumpyPickle.array(entry.value)) }
    }
    return 0
}
