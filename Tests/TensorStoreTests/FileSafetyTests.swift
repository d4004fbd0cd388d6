import Foundation
import TensorStore
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Issue 15, the shared file rules: non-regular files are refused without blocking, outputs
/// follow one rule, temporaries of dead writers are swept, relative paths stay in their folder.
final class FileSafetyTests: XCTestCase {
    private func temporaryDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("filesafety-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    /// Runs `body` on another thread and fails (instead of hanging the suite) if it blocks.
    private func withinSeconds(_ seconds: Double, _ what: String, _ body: @escaping @Sendable () throws -> Void) {
        let done = expectation(description: what)
        Thread { try? body(); done.fulfill() }.start()
        wait(for: [done], timeout: seconds)
    }

    /// Before the fix `open(2)` on a FIFO blocked until a writer appeared: this test hung.
    func testAFIFOIsRefusedWithoutBlocking() throws {
        let fifo = try temporaryDirectory() + "/weights.safetensors"
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        withinSeconds(5, "MappedFile on a FIFO returns") {
            XCTAssertThrowsError(try MappedFile(path: fifo)) { error in
                XCTAssertTrue("\(error)".contains("not a regular file (a FIFO)"), "\(error)")
            }
        }
        withinSeconds(5, "RegularFile.read on a FIFO returns") {
            XCTAssertThrowsError(try RegularFile.read(fifo))
            XCTAssertThrowsError(try RegularFile.head(fifo, count: 8))
        }
    }

    func testADirectoryAndADeviceAreRefused() throws {
        let dir = try temporaryDirectory()
        XCTAssertThrowsError(try RegularFile.read(dir)) { XCTAssertTrue("\($0)".contains("a directory"), "\($0)") }
        XCTAssertThrowsError(try MappedFile(path: "/dev/zero")) { XCTAssertTrue("\($0)".contains("character device"), "\($0)") }
    }

    func testReadHonoursItsLimit() throws {
        let path = try temporaryDirectory() + "/big.json"
        try Data(repeating: 0x20, count: 1000).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(try RegularFile.read(path).count, 1000)
        XCTAssertThrowsError(try RegularFile.read(path, limit: 999))
        XCTAssertEqual(try RegularFile.head(path, count: 8).count, 8)
    }

    // MARK: output rule

    func testOutputRule() throws {
        let dir = try temporaryDirectory()
        let input = dir + "/a.pth"
        try Data("x".utf8).write(to: URL(fileURLWithPath: input))
        func problem(_ body: () throws -> Void) -> OutputPath.Problem? {
            do { try body(); return nil } catch let p as OutputPath.Problem { return p } catch { return nil }
        }
        XCTAssertEqual(problem { try OutputPath.checkFile(dir + "/missing/out.pth") },
                       .missingFolder(output: dir + "/missing/out.pth", folder: dir + "/missing"))
        XCTAssertEqual(problem { try OutputPath.checkFile(input + "/out.pth") },
                       .parentNotAFolder(output: input + "/out.pth", folder: input))
        XCTAssertEqual(problem { try OutputPath.checkFile(dir) }, .isDirectory(output: dir))
        XCTAssertEqual(problem { try OutputPath.checkFile(input, inputs: [input]) }, .sameAsInput(output: input, input: input))
        // The same file under other names: a symbolic link and a hard link.
        XCTAssertEqual(symlink(input, dir + "/sym.pth"), 0)
        XCTAssertEqual(link(input, dir + "/hard.pth"), 0)
        XCTAssertEqual(problem { try OutputPath.checkFile(dir + "/sym.pth", inputs: [input]) },
                       .sameAsInput(output: dir + "/sym.pth", input: input))
        XCTAssertEqual(problem { try OutputPath.checkFile(dir + "/hard.pth", inputs: [input]) },
                       .sameAsInput(output: dir + "/hard.pth", input: input))
        XCTAssertNil(problem { try OutputPath.checkFile(dir + "/new.pth", inputs: [input]) })
        // Folder outputs: one missing level is created by the writer; two are not.
        XCTAssertNil(problem { try OutputPath.checkFolder(dir + "/hf/") })
        XCTAssertEqual(problem { try OutputPath.checkFolder(dir + "/x/hf/") }, .missingFolder(output: dir + "/x/hf", folder: dir + "/x"))
        XCTAssertEqual(problem { try OutputPath.checkFolder(input) }, .isFile(output: input))
        // One line, naming the output.
        let text = "\(OutputPath.Problem.missingFolder(output: "m/o.pth", folder: "m"))"
        XCTAssertEqual(text, "m/o.pth: folder m does not exist; create it first (DinoKit does not create folders for outputs)")
    }

    /// Before the fix: "rename failed: Is a directory" after the whole write; a missing folder
    /// named the temporary file's folder.
    func testTheAtomicWriterAppliesTheOutputRule() throws {
        let dir = try temporaryDirectory()
        XCTAssertThrowsError(try AtomicFileWriter.write(to: dir) { try $0.write("x") }) { error in
            XCTAssertEqual("\(error)", "\(dir): is a directory; give a file name for the output")
        }
        XCTAssertThrowsError(try AtomicFileWriter.write(to: dir + "/nope/out.bin") { try $0.write("x") }) { error in
            XCTAssertTrue("\(error)".contains("folder \(dir)/nope does not exist"), "\(error)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }

    // MARK: stale temporaries

    /// A pid that no process has now (a child that has exited and been reaped).
    private func deadPID() throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        return p.processIdentifier
    }

    /// Before the fix a kill -9 left `.out.safetensors.tmp-*` for ever.
    func testTemporariesOfDeadWritersAreSweptOnTheNextWrite() throws {
        let dir = try temporaryDirectory()
        let dead = try deadPID()
        let prefix = AtomicFileWriter.temporaryPrefix("out.safetensors")
        let stale = prefix + "\(dead)-Ab12Cd"
        let live = prefix + "\(getppid())-Zz99Yy"     // a writer that is still running
        let foreign = [prefix + "Ab12Cd", ".other.safetensors.tmp-\(dead)-Ab12Cd", "out.safetensors.tmp-\(dead)-Ab12Cd"]
        for name in [stale, live] + foreign { XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/" + name, contents: Data("junk".utf8))) }
        try AtomicFileWriter.write(to: dir + "/out.safetensors") { try $0.write("new") }
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: dir))
        XCTAssertFalse(left.contains(stale))
        XCTAssertTrue(left.isSuperset(of: [live, "out.safetensors"] + foreign), "\(left)")
    }

    /// A run folder being resumed: every dead writer's temporary goes, whatever its target.
    func testAFolderSweepRemovesEveryDeadWritersTemporary() throws {
        let dir = try temporaryDirectory()
        let dead = try deadPID()
        let stale = [".loss.png.tmp-\(dead)-Ab12Cd", ".step-000004.safetensors.tmp-\(dead)-Zz99Yy"]
        let kept = [".loss.png.tmp-\(getppid())-Ab12Cd", ".x.tmp-Ab12Cd", "loss.png", ".tmp-\(dead)-Ab12Cd"]
        for name in stale + kept { XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/" + name, contents: Data())) }
        AtomicFileWriter.sweepStaleTemporaries(in: dir)
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: dir)), Set(kept))
    }

    // MARK: containment

    func testContainedPaths() throws {
        let root = try temporaryDirectory()
        let dir = root + "/golden"
        try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
        for p in [dir + "/sub/in.npy", root + "/secret.npy"] { FileManager.default.createFile(atPath: p, contents: Data()) }
        XCTAssertEqual(symlink(root + "/secret.npy", dir + "/link.npy"), 0)
        XCTAssertEqual(symlink(dir + "/sub/in.npy", dir + "/inside.npy"), 0)
        XCTAssertTrue(try ContainedPath.resolve("sub/in.npy", in: dir).hasSuffix("/golden/sub/in.npy"))
        XCTAssertTrue(try ContainedPath.resolve("inside.npy", in: dir).hasSuffix("/golden/sub/in.npy"))
        let cases: [(String, ContainedPath.Refusal)] = [
            ("../secret.npy", .leavesFolder("../secret.npy")), ("sub/../../secret.npy", .leavesFolder("sub/../../secret.npy")),
            (root + "/secret.npy", .notRelative(root + "/secret.npy")), ("link.npy", .resolvesOutside("link.npy")),
            ("nope.npy", .missing("nope.npy")), ("", .notRelative("")),
        ]
        for (path, refusal) in cases {
            XCTAssertThrowsError(try ContainedPath.resolve(path, in: dir), path) { XCTAssertEqual($0 as? ContainedPath.Refusal, refusal) }
        }
    }
}
