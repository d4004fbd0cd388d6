import Formats
import TensorStore
import TestSupport
import XCTest

/// Hostile checkpoints that go after the reader's resources rather than its allow-list
/// (Fixtures/hostile/pth-*, from Scripts/fixtures/pth.py; issue 15): each gives its typed,
/// one-line error instead of a trap, a stack overflow, an out-of-memory abort or a hang.
final class HostileTorchCheckpointTests: XCTestCase {
    func readError(_ name: String, limits: ReadLimits = .default,
                   file: StaticString = #filePath, line: UInt = #line) -> TorchCheckpointError? {
        hostileReadError(name, limits: limits, file: file, line: line)
    }

    func pickleError(_ name: String, file: StaticString = #filePath, line: UInt = #line) -> PickleError? {
        hostilePickleError(name, file: file, line: line)?.error
    }

    // 1. Arithmetic overflow in the view's end.

    func testStorageOffsetNearIntMaxIsAnInvalidTensorNotATrap() {
        guard case let .invalidTensor(_, tensor, detail) = readError("pth-offset-overflow.pth") else { return XCTFail() }
        XCTAssertEqual(tensor, "w")
        XCTAssertTrue(detail.contains("9223372036854775807"), detail)
    }

    func testViewExtentChecksEveryStep() throws {
        XCTAssertThrowsError(try ViewExtent(shape: [1], strides: [1], offset: Int.max, elementSize: 4))
        XCTAssertThrowsError(try ViewExtent(shape: [Int.max / 2], strides: [0], offset: 0, elementSize: 4))
        XCTAssertThrowsError(try ViewExtent(shape: [3, 2], strides: [1], offset: 0, elementSize: 4))
        // Materialising recurses per dimension: 100k size-1 dimensions would overflow the stack.
        XCTAssertThrowsError(try ViewExtent(shape: Array(repeating: 1, count: 100_000), strides: Array(repeating: 1, count: 100_000),
                                            offset: 0, elementSize: 4))
        let e = try ViewExtent(shape: [2, 3], strides: [1, 2], offset: 5, elementSize: 4)
        XCTAssertEqual(e, try ViewExtent(shape: [2, 3], strides: [1, 2], offset: 5, elementSize: 4))
        XCTAssertEqual(e.startByte, 20)
        XCTAssertEqual(e.endByte, (5 + 1 + 4 + 1) * 4)
        XCTAssertEqual(e.byteCount, 24)
        XCTAssertFalse(e.amplifies)
        XCTAssertTrue(try ViewExtent(shape: [10], strides: [0], offset: 0, elementSize: 4).amplifies)
        XCTAssertEqual(try ViewExtent(shape: [0, Int.max], strides: [1, 1], offset: 0, elementSize: 4).endByte, 0)
    }

    // 2. Exponential work hashing a key of shared tuples.

    /// The key is built once per tuple node (interned), so the 2^60-node tree costs ~60 steps to
    /// hash; what stops the file is the value's expanded size, as for any memo bomb.
    func testKeyOfSharedNestedTuplesIsHashedOncePerNode() throws {
        guard case let .limitExceeded(what, _, _) = pickleError("pth-hash-bomb.pth") else { return XCTFail() }
        XCTAssertTrue(what.contains("tree"), what)
        // With a work budget far below 2^60 (and below the 2^20 visits hashing the key as a tree
        // to depth 20 took before), the key alone does not exhaust it.
        let archive = try ZipArchive(path: fixturePath("hostile/pth-hash-bomb.pth"))
        let data = try archive.contents(of: try XCTUnwrap(archive.entries.first { $0.name.hasSuffix("data.pkl") }))
        var limits = PickleLimits(inputSize: data.count)
        limits.maxWork = 2_000
        XCTAssertThrowsError(try Unpickler.unpickle(data, limits: limits)) { error in
            guard case let .limitExceeded(what, _, _) = error as? PickleError else { return XCTFail("\(error)") }
            XCTAssertFalse(what.contains("work"), what)
        }
    }

    /// A dict shared under 1000-character keys at 14 levels spells out ~450 MB of names from 28 KB
    /// (the long fuzz campaign's `fuzz-pth-zip` timeouts built such names under ASan); the walk
    /// stops at 64 bytes of names per pickle byte (+ 1 MiB), far above any real checkpoint's.
    func testNamesOfASharedTreeStopAtTheNamesLimit() throws {
        guard case let .namesTooLong(_, limit) = readError("pth-long-names.pth") else { return XCTFail() }
        let archive = try ZipArchive(path: fixturePath("hostile/pth-long-names.pth"))
        let pickle = try archive.contents(of: try XCTUnwrap(archive.entries.first { $0.name.hasSuffix("data.pkl") }))
        XCTAssertEqual(limit, 64 * pickle.count + (1 << 20))
        // A real checkpoint's names stay far below it: the mini ViT's hub .pth.
        XCTAssertNoThrow(try TorchCheckpoint.read(path: fixturePath("models/mini-plain.pth")))
    }

    /// 338 bytes of legacy checkpoint (as the long campaign's `fuzz-pth-legacy` found it) whose one
    /// tensor is a 1048576×16 view of a 16-element storage (stride 0 outside): materialising it
    /// copied 16 M elements one by one (> 1 s under ASan); now the broadcast is written once and
    /// doubled. Its values are the gather the view defines.
    func testALegacyBroadcastViewMaterialisesAsItsGather() throws {
        let store = try TorchCheckpoint.read(path: fixturePath("hostile/pth-legacy-broadcast.pth")).store
        let w = try XCTUnwrap(store["w"])
        XCTAssertEqual(w.shape.dims, [1_048_576, 16])
        XCTAssertFalse(w.isContiguous)
        let all = w.contiguous().floats()
        let source = try Tensor(storage: w.storage, dtype: w.dtype, shape: [w.storage.count / 4]).floats()
        for row in [0, 1, 777, 1_048_575] {
            for col in 0..<16 {
                XCTAssertEqual(all[row * 16 + col].bitPattern, source[w.offset + row * w.strides[0] + col * w.strides[1]].bitPattern)
            }
        }
    }

    // 3. Recursion driven by the input.

    func testRebuildFromTypeChainHitsTheDepthLimit() {
        guard case let .limitExceeded(what, limit, _) = pickleError("pth-rebuild-chain.pth") else { return XCTFail() }
        XCTAssertTrue(what.contains("calls nested"), what)
        XCTAssertEqual(limit, 256)
    }

    /// The 2.4 MB form (200k levels) overflowed the stack; it is built here rather than committed.
    func testDeepRebuildFromTypeChainDoesNotOverflowTheStack() {
        var bytes: [UInt8] = [0x80, 2] + Array("ctorch._tensor\n_rebuild_from_type_v2\nq\u{0}ctorch\nTensor\nq\u{1})q\u{2}".utf8)
        let level: [UInt8] = [0x28, 0x68, 0, 0x68, 1, 0x68, 2, 0x4E, 0x74, 0x71, 2, 0x30] // (f, Tensor, args, None), memo 2, POP
        bytes.reserveCapacity(bytes.count + 200_000 * level.count + 8)
        for _ in 0..<200_000 { bytes += level }
        bytes += [0x68, 0, 0x68, 2, 0x52, 0x2E]
        XCTAssertGreaterThan(bytes.count, 2_400_000)
        do {
            _ = try Unpickler.unpickle(bytes)
            XCTFail("accepted")
        } catch let PickleError.limitExceeded(what, _, _) {
            XCTAssertTrue(what.contains("calls nested"), what)
        } catch {
            XCTFail("\(error)")
        }
    }

    // 4. Allocations sized by the input.

    func testMemoGapsCountAgainstTheMemoLimit() {
        guard case let .limitExceeded(what, _, _) = pickleError("pth-memo-gaps.pth") else { return XCTFail() }
        XCTAssertTrue(what.contains("memo"), what)
    }

    func testDeflatedMemberBeyondTheMemoryLimitIsNotInflated() throws {
        let small = ReadLimits(memoryBytes: 1 << 20)
        guard case let .store(_, .memoryLimitExceeded(what, bytes, limit)) = readError("pth-deflate-bomb.pth", limits: small) else {
            return XCTFail()
        }
        XCTAssertTrue(what.contains("archive/data.pkl"), what)
        XCTAssertGreaterThan(bytes, 2 << 20)
        XCTAssertEqual(limit, 1 << 20)
        // Under the default limit the same file is read: the limit, not the file, was the problem.
        let contents = try TorchCheckpoint.read(path: fixturePath("hostile/pth-deflate-bomb.pth"))
        XCTAssertEqual(contents.store.metadata["s"]?.count, 2 << 20)
    }

    func testStrideZeroViewTooLargeToMaterialiseIsRefused() {
        guard case let .store(_, .memoryLimitExceeded(what, bytes, _)) = readError("pth-stride0-huge.pth") else { return XCTFail() }
        XCTAssertTrue(what.contains("tensor 'w'"), what)
        XCTAssertEqual(bytes, 4 << 40)
    }

    func testMemoryBudgetIsCumulativeAndParsesSizes() {
        let budget = MemoryBudget(ReadLimits(memoryBytes: 100))
        XCTAssertNoThrow(try budget.charge(60, for: "a"))
        XCTAssertThrowsError(try budget.charge(60, for: "b")) {
            XCTAssertEqual($0 as? TensorStoreError, .memoryLimitExceeded(what: "b", bytes: 60, limit: 100))
        }
        XCTAssertEqual(ReadLimits.parseByteCount("16G"), 16 << 30)
        XCTAssertEqual(ReadLimits.parseByteCount(" 512m "), 512 << 20)
        XCTAssertEqual(ReadLimits.parseByteCount("4096"), 4096)
        XCTAssertNil(ReadLimits.parseByteCount("-1"))
        XCTAssertNil(ReadLimits.parseByteCount("lots"))
    }

    func testNumpySizeMismatchMessageDoesNotOverflow() {
        let message = NumpyPickleError.sizeMismatch(shape: [Int.max, 2], dtype: .f32, bytes: 0).description
        XCTAssertTrue(message.contains("more than"), message)
    }

    // 5. Super-linear integer printing.

    func testLongIntegerMetadataIsShownShortened() throws {
        let contents = try TorchCheckpoint.read(path: fixturePath("hostile/pth-long-int.pth"))
        let text = try XCTUnwrap(contents.store.metadata["big"])
        XCTAssertEqual(text, "0x8000000000000000…(24000-bit integer)")
        XCTAssertEqual(contents.store.metadata.count, 1)
    }

    // 6. Names from the file in messages.

    func testControlCharactersInNamesAreEscapedInErrors() {
        guard case let .missingStorage(_, key) = readError("pth-escape-names.pth") else { return XCTFail() }
        XCTAssertEqual(key, "k\n\u{7}")
        let message = readError("pth-escape-names.pth")?.description ?? ""
        XCTAssertTrue(message.contains("'k\\n\\u{7}'"), message)
        guard case let .missingEntry(_, entry) = readError("pth-escape-entry.pth") else { return XCTFail() }
        XCTAssertEqual(entry, "evil\n\u{1b}[2J/data.pkl")
        let entryMessage = readError("pth-escape-entry.pth")?.description ?? ""
        XCTAssertTrue(entryMessage.contains("'evil\\n\\u{1b}[2J/data.pkl'"), entryMessage)
    }
}
