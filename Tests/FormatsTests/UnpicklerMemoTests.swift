import Formats
import XCTest

/// The memo is an array for the indices pickles use (0, 1, 2, ...) with a dictionary for far ones:
/// every index must still mean what Python's memo dict means.
final class UnpicklerMemoTests: XCTestCase {
    private func unpickle(_ bytes: [UInt8]) throws -> PickleValue { try Unpickler.unpickle(bytes) }

    func testIndicesInOrderWithGapsAndFarAway() throws {
        // ( 1 BINPUT 0, 2 LONG_BINPUT 5 (a gap), 3 LONG_BINPUT 70000 (far), 4 BINPUT 5 (overwrite),
        //   BINGET 0, BINGET 5, LONG_BINGET 70000 ) TUPLE STOP
        let bytes: [UInt8] = [0x28, 0x4B, 1, 0x71, 0, 0x4B, 2, 0x72, 5, 0, 0, 0, 0x4B, 3, 0x72, 0x70, 0x11, 0x01, 0x00,
                              0x4B, 4, 0x71, 5, 0x68, 0, 0x68, 5, 0x6A, 0x70, 0x11, 0x01, 0x00, 0x74, 0x2E]
        XCTAssertEqual(try unpickle(bytes), .tuple([.int(1), .int(2), .int(3), .int(4), .int(1), .int(4), .int(3)]))
    }

    func testAGapIsNotAnEntry() {
        // BINPUT 3 leaves 0...2 empty: BINGET 1 refers to nothing.
        XCTAssertThrowsError(try unpickle([0x4E, 0x71, 3, 0x68, 1, 0x2E])) { error in
            XCTAssertEqual(error as? PickleError, .malformed("memo entry 1 was never stored", offset: 3))
        }
    }

    func testMemoizeCountsEntriesNotTheHighestIndex() throws {
        // MEMOIZE stores at len(memo): after BINPUT 7 that is 1, not 8.
        let bytes: [UInt8] = [0x28, 0x4B, 9, 0x71, 7, 0x4B, 8, 0x94, 0x68, 1, 0x68, 7, 0x74, 0x2E]
        XCTAssertEqual(try unpickle(bytes), .tuple([.int(9), .int(8), .int(8), .int(9)]))
    }
}

/// The allow-list's shortcut for state-dict globals must never allow what the full list refuses.
final class PickleAllowListShortcutTests: XCTestCase {
    func testEveryShortcutGlobalIsOnTheFullList() {
        let storages = ["FloatStorage", "HalfStorage", "BFloat16Storage", "DoubleStorage", "LongStorage", "IntStorage",
                        "ShortStorage", "CharStorage", "ByteStorage", "BoolStorage", "QInt8Storage", "UntypedStorage", "Storage", "os"]
        let candidates = [("collections", "OrderedDict"), ("collections", "Counter"), ("collections", "defaultdict"),
                          ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_parameter"),
                          ("torch._utils", "_rebuild_tensor_v3"), ("posix", "system")] + storages.map { ("torch", $0) }
        for (module, name) in candidates {
            let full = !PickleAllowList.blockedModules.contains(module) && PickleAllowList.allowed.contains("\(module).\(name)")
            XCTAssertEqual(PickleAllowList.isAllowed(module: module, name: name), full, "\(module).\(name)")
        }
    }
}
