import TestSupport
import XCTest

/// Widths that are not a multiple of 64 do not say their heads; every place that meets one
/// names --num-heads (mini-plain.pth: width 16, no num_heads recorded).
final class NumHeadsTests: XCTestCase {
    let mini = fixturePath("models/mini-plain.pth")

    func testLoadErrorNamesTheOption() throws {
        let out = makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try dinokit(["forward", "--weights", mini, "--input", fixturePath("golden/tiny-plain/small.npy"), "--out", out + "/o.npz"])
        assertRuntimeError(r, contains: "pass --num-heads N")
    }

    func testInspectSaysHowToGiveTheHeads() throws {
        let r = try dinokit(["inspect", mini])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("heads ?"), r.stdout)
        XCTAssertTrue(r.stdout.contains("pass --num-heads N"), r.stdout)
    }

    func testConvertWarnsWhenTheOutputCannotBeLoadedWithoutTheOption() throws {
        let out = makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: out) }
        // No heads known.
        let unknown = try dinokit(["convert", mini, out + "/a.safetensors"])
        XCTAssertEqual(unknown.status, 0, unknown.stderr)
        XCTAssertTrue(unknown.stderr.hasPrefix("dinokit: warning: ") && unknown.stderr.contains("--num-heads"), unknown.stderr)
        // Heads known, but a .npz keeps tensors only.
        let dropped = try dinokit(["convert", fixturePath("golden/tiny-plain/model.safetensors"), out + "/b.npz"])
        XCTAssertEqual(dropped.status, 0, dropped.stderr)
        XCTAssertTrue(dropped.stderr.contains("--num-heads 2"), dropped.stderr)
        // Recorded: no warning, and the output loads without the option.
        let recorded = try dinokit(["convert", mini, out + "/c.safetensors", "--num-heads", "2"])
        XCTAssertEqual(recorded.status, 0, recorded.stderr)
        XCTAssertEqual(recorded.stderr, "")
        let inspect = try dinokit(["inspect", out + "/c.safetensors"])
        XCTAssertTrue(inspect.stdout.contains("heads 2"), inspect.stdout)
    }
}
