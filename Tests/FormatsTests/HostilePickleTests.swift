import Formats
import Foundation
import TensorStore
import TestSupport
import XCTest

/// Hostile checkpoints (Fixtures/hostile/pth-*, from Scripts/fixtures/pth.py) and hand-made
/// pickles: each is refused with its named reason; nothing crashes, hangs or allocates wildly.
final class HostilePickleTests: XCTestCase {
    func readError(_ name: String, file: StaticString = #filePath, line: UInt = #line) -> TorchCheckpointError? {
        hostileReadError(name, file: file, line: line)
    }

    func pickleError(_ name: String, file: StaticString = #filePath, line: UInt = #line) -> PickleError? {
        guard let (part, error) = hostilePickleError(name, file: file, line: line) else { return nil }
        XCTAssertEqual(part, "archive/data.pkl", file: file, line: line)
        return error
    }

    func testCodeExecutingGlobalsAreRefusedByName() {
        XCTAssertEqual(pickleError("pth-os-system.pth"), .forbiddenGlobal(module: "posix", name: "system", offset: 2))
        XCTAssertEqual(pickleError("pth-stack-global-eval.pth"), .forbiddenGlobal(module: "builtins", name: "eval", offset: 29))
        XCTAssertEqual(pickleError("pth-inst.pth"), .forbiddenGlobal(module: "os", name: "system", offset: 12))
        XCTAssertEqual(pickleError("pth-obj.pth"), .forbiddenGlobal(module: "subprocess", name: "Popen", offset: 3))
        XCTAssertEqual(pickleError("pth-newobj.pth"), .forbiddenGlobal(module: "builtins", name: "object", offset: 2))
        let message = readError("pth-os-system.pth")?.description ?? ""
        XCTAssertTrue(message.contains("posix.system") && message.contains("byte 2"), message)
    }

    func testMemoBombIsBoundedNotExpanded() {
        guard case let .limitExceeded(what, _, _) = pickleError("pth-memo-bomb.pth") else { return XCTFail("memo bomb accepted") }
        XCTAssertTrue(what.contains("memo bomb"), what)
    }

    func testDeepNestingIsRefused() {
        guard case let .limitExceeded(what, limit, _) = pickleError("pth-deep-marks.pth") else { return XCTFail() }
        XCTAssertTrue(what.contains("MARK"), what)
        XCTAssertEqual(limit, 1024)
        guard case let .limitExceeded(what2, _, _) = pickleError("pth-deep-tuples.pth") else { return XCTFail() }
        XCTAssertTrue(what2.contains("nesting"), what2)
    }

    func testMalformedPickles() {
        guard case let .malformed(message, _) = pickleError("pth-cyclic.pth") else { return XCTFail() }
        XCTAssertTrue(message.contains("cyclic"), message)
        guard case .truncated = pickleError("pth-huge-string.pth") else { return XCTFail() }
        XCTAssertEqual(pickleError("pth-unknown-opcode.pth"), .unknownOpcode(0xFF, offset: 2))
        guard case .truncated = pickleError("pth-truncated-pickle.pth") else { return XCTFail() }
    }

    func testStorageClaimingMoreThanItsDataNamesTheKey() {
        guard case let .storageTooSmall(_, key, claimed, available) = readError("pth-numel-too-big.pth") else { return XCTFail() }
        XCTAssertEqual(key, "0")
        XCTAssertEqual(claimed, 4_000_000_000)
        XCTAssertEqual(available, 24)
    }

    func testBrokenZipsAreRefused() {
        guard case .zip(.notAZip) = readError("pth-truncated.pth") else { return XCTFail() }
        guard case .zip(.outOfBounds) = readError("pth-cd-outside.pth") else { return XCTFail() }
    }

    // MARK: - Hand-made pickles

    func unpickleError(_ bytes: [UInt8], limits: PickleLimits? = nil, file: StaticString = #filePath, line: UInt = #line) -> PickleError? {
        do {
            let v = try Unpickler.unpickle(bytes, limits: limits)
            XCTFail("accepted: \(v)", file: file, line: line)
        } catch let error as PickleError {
            return error
        } catch {
            XCTFail("untyped \(error)", file: file, line: line)
        }
        return nil
    }

    /// Pickle bytes spelled as Latin-1 text (every scalar is one byte).
    func b(_ s: String) -> [UInt8] { s.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) } }

    func testLengthsBeyondTheInputAllocateNothing() {
        // BINUNICODE claiming 4 GiB, BINBYTES8 claiming 2^62, LONG4 of 2 GiB, FRAME of 2^40.
        XCTAssertEqual(unpickleError([0x80, 2, 0x58, 0xF0, 0xFF, 0xFF, 0xFF, 0x41, 0x2E]), .truncated(offset: 7, needed: 0xFFFF_FFF0 - 2))
        guard case .truncated = unpickleError([0x80, 4, 0x8E] + [0, 0, 0, 0, 0, 0, 0, 0x40] + [0x2E]) else { return XCTFail() }
        guard case .truncated = unpickleError([0x80, 2, 0x8B, 0xFF, 0xFF, 0xFF, 0x7F, 0x2E]) else { return XCTFail() }
        guard case .malformed = unpickleError([0x80, 2, 0x8B, 0xFF, 0xFF, 0xFF, 0xFF, 0x2E]) else { return XCTFail() }
        guard case .truncated = unpickleError([0x80, 4, 0x95, 0, 0, 0, 0, 0, 1, 0, 0, 0x4E, 0x2E]) else { return XCTFail() }
        XCTAssertEqual(unpickleError([0x80, 2]), .truncated(offset: 2, needed: 1))
        XCTAssertEqual(unpickleError([]), .truncated(offset: 0, needed: 1))
    }

    func testStackAndMemoMisuse() {
        XCTAssertEqual(unpickleError(b(".")), .malformed("stack underflow", offset: 0))
        XCTAssertEqual(unpickleError([0x68, 5, 0x2E]), .malformed("memo entry 5 was never stored", offset: 0))
        guard case .malformed = unpickleError(b("NNa.")) else { return XCTFail("APPEND to None") }
        guard case .malformed = unpickleError(b("}Nu.")) else { return XCTFail("SETITEMS without MARK") }
        guard case .malformed = unpickleError(b("}(Nu.")) else { return XCTFail("odd SETITEMS") }
        guard case .malformed = unpickleError(b("}(]Nu.")) else { return XCTFail("unhashable key") }
        // MARK fences the stack: APPEND cannot reach the list below it.
        guard case .malformed = unpickleError(b("](a.")) else { return XCTFail("APPEND across MARK") }
        // A sparse memo index is fine (no dense memo array sized by the index).
        XCTAssertEqual(try Unpickler.unpickle([0x4E, 0x72, 0xFF, 0xFF, 0xFF, 0xFF, 0x6A, 0xFF, 0xFF, 0xFF, 0xFF, 0x2E]), .none)
        var tight = PickleLimits(inputSize: 100)
        tight.maxMemoEntries = 2
        guard case .limitExceeded = unpickleError(b("Nq\u{0}q\u{1}q\u{2}."), limits: tight) else { return XCTFail("memo limit") }
        tight.maxExpandedNodes = 5
        guard case .limitExceeded = unpickleError(b("(NNNNNNl."), limits: tight) else { return XCTFail("expanded limit") }
    }

    func testOpcodesAWeightsFileNeverNeeds() {
        XCTAssertEqual(unpickleError([0x82, 1, 0x2E]), .unsupportedOpcode(name: "EXT1", offset: 0))
        XCTAssertEqual(unpickleError([0x80, 5, 0x97, 0x2E]), .unsupportedOpcode(name: "NEXT_BUFFER", offset: 2))
        XCTAssertEqual(unpickleError(b("P1\n.")), .unsupportedOpcode(name: "PERSID", offset: 0))
        guard case .malformed = unpickleError([0x80, 9, 0x2E]) else { return XCTFail("protocol 9") }
    }

    func testAllowedGlobalsCannotBeAbused() {
        // A dtype is a value, not a function.
        guard case .unsupportedCall = unpickleError(b("ctorch\nfloat32\n)R.")) else { return XCTFail() }
        // Quantized tensors are allow-listed by torch but not read by DinoKit.
        guard case .unsupportedCall = unpickleError(b("ctorch._utils\n_rebuild_qtensor\n)R.")) else { return XCTFail() }
        // REDUCE on something that is not a global (a string).
        guard case .malformed = unpickleError(b("X\u{1}\u{0}\u{0}\u{0}a)R.")) else { return XCTFail() }
        // A persistent id that is not a storage, and one that pickles a module class (legacy).
        guard case .malformed = unpickleError(b("X\u{3}\u{0}\u{0}\u{0}abc\u{85}Q.")) else { return XCTFail() }
        guard case .unsupportedCall = unpickleError(b("X\u{6}\u{0}\u{0}\u{0}module\u{85}Q.")) else { return XCTFail() }
        // A storage class that is not a storage class.
        guard case .malformed = unpickleError(b("(X\u{7}\u{0}\u{0}\u{0}storagectorch\nSize\nX\u{1}\u{0}\u{0}\u{0}0X\u{3}\u{0}\u{0}\u{0}cpuK\u{1}tQ.")) else { return XCTFail() }
        // _rebuild_tensor_v2 with a negative size.
        let storage = "(X\u{7}\u{0}\u{0}\u{0}storagectorch\nFloatStorage\nX\u{1}\u{0}\u{0}\u{0}0X\u{3}\u{0}\u{0}\u{0}cpuK\u{4}tQ"
        let negative = "ctorch._utils\n_rebuild_tensor_v2\n(" + storage + "K\u{0}J\u{FF}\u{FF}\u{FF}\u{FF}\u{85}K\u{1}\u{85}\u{89}}tR."
        guard case .malformed = unpickleError(b(negative)) else { return XCTFail() }
        let good = "ctorch._utils\n_rebuild_tensor_v2\n(" + storage + "K\u{0}K\u{4}\u{85}K\u{1}\u{85}\u{89}}tR."
        XCTAssertNotNil(try Unpickler.unpickle(b(good)).tensorValue)
    }

    /// Every truncation and seeded corruptions of real data.pkl files: a value or a PickleError.
    func testTruncationsAndFlipsOfRealPicklesNeverCrash() throws {
        var pickles: [[UInt8]] = []
        for name in ["checkpoint.pth", "proto4.pth", "dtype-v3.pth"] {
            let archive = try ZipArchive(path: fixturePath("pth/\(name)"))
            let entry = try XCTUnwrap(archive.entries.first { $0.name.hasSuffix("/data.pkl") })
            pickles.append(try archive.contents(of: entry))
        }
        pickles.append(Array(try XCTUnwrap(FileManager.default.contents(atPath: fixturePath("pth/values-p5.pkl")))))
        var rng = SyntheticInput(seed: 77)
        var runs = 0
        for p in pickles {
            for cut in stride(from: 0, to: p.count, by: max(1, p.count / 400)) {
                XCTAssertThrowsError(try Unpickler.unpickle(Array(p.prefix(cut)))) { XCTAssertTrue($0 is PickleError) }
                runs += 1
            }
            for _ in 0..<1500 {
                var q = p
                for _ in 0..<(Int(rng.nextState() % 3) + 1) {
                    q[Int(rng.nextState() % UInt32(q.count))] = UInt8(truncatingIfNeeded: rng.nextState() >> 24)
                }
                do { _ = try Unpickler.unpickle(q) } catch is PickleError {} catch { XCTFail("untyped \(error)") }
                runs += 1
            }
        }
        XCTAssertGreaterThan(runs, 5000)
    }

    /// Corrupting a whole checkpoint file: typed errors only.
    func testCorruptedCheckpointFilesGiveTypedErrors() throws {
        let dir = makeTemporaryDirectory("pth-fuzz")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rng = SyntheticInput(seed: 5)
        for name in ["shared.pth", "legacy.pth"] {
            let bytes = try XCTUnwrap(FileManager.default.contents(atPath: fixturePath("pth/\(name)"))).map { $0 }
            let path = "\(dir)/\(name)"
            for i in 0..<400 {
                var b = bytes
                if i % 4 == 0 {
                    b = Array(b.prefix(Int(rng.nextState() % UInt32(b.count))))
                } else {
                    for _ in 0..<(Int(rng.nextState() % 4) + 1) {
                        b[Int(rng.nextState() % UInt32(b.count))] = UInt8(truncatingIfNeeded: rng.nextState() >> 24)
                    }
                }
                _ = FileManager.default.createFile(atPath: path, contents: Data(b))
                do {
                    let contents = try TorchCheckpoint.read(path: path)
                    for t in contents.store.tensors.values { _ = t.withContiguousBytes { $0.count } }
                } catch is TorchCheckpointError {
                } catch is TensorStoreError {
                } catch {
                    XCTFail("\(name): untyped error \(error)")
                }
            }
        }
    }
}
