import Foundation
import TestSupport
import XCTest

/// `--precision int8` on the commands that run a model: verify holds it to the int8 tolerance (and
/// --min-cosine overrides it), bench names the int8 tile that ran, forward, embed, pca and
/// attention run with it (probe's int8 is held to the f32 task by ProbePrecisionTests); DINOKIT_TILES
/// chooses the bf16 and int8 tiles.
final class Int8CommandTests: XCTestCase {
    static let model = fixturePath("golden/tiny-plain/model.safetensors")
    static let image = fixturePath("images/china_320x272_q90_420.jpg")

    func testVerifyUsesTheInt8Tolerance() throws {
        let r = try dinokit(["verify", fixturePath("golden/tiny-plain"), "--precision", "int8", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let json = try r.json()
        XCTAssertEqual(json["precision"] as? String, "int8")
        let tolerance = try XCTUnwrap(json["tolerance"] as? [String: Any])
        XCTAssertEqual(tolerance["min_cosine"] as? Double, 0.999)
        XCTAssertEqual(tolerance["atol"] as? Double, 0.1)
        // An unreachable cosine fails the set: the cosine decides, not only max abs.
        let strict = try dinokit(["verify", fixturePath("golden/tiny-plain"), "--precision", "int8", "--min-cosine", "0.9999999"])
        XCTAssertEqual(strict.status, 1, strict.stdout)
    }

    func testBenchNamesTheInt8Tile() throws {
        let r = try dinokit(["bench", "--weights", Self.model, "--batch", "1", "--size", "28", "--iterations", "1",
                             "--warmup-seconds", "0", "--precision", "int8", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let json = try r.json()
        XCTAssertEqual(json["precision"] as? String, "int8")
        let kernel = try XCTUnwrap(json["gemm_kernel"] as? String)
        XCTAssertTrue(["amx_int8: tdpbssd", "avx512_vnni: vpdpbusd", "avx2: int8 pmaddubsw to int32", "scalar: int8 in int32"].contains(kernel),
                      kernel)
    }

    /// DINOKIT_TILES chooses the reduced-precision tiles as DINOKIT_KERNELS chooses the path: "dot"
    /// runs no AMX (the vdpbf16ps / vpdpbusd tiles, where the CPU has them), "fallback" no
    /// dot-product instruction either. On a CPU without those tiles the check holds trivially.
    func testTilesEnvironmentCapsTheTiles() throws {
        for (tiles, refused) in [("dot", ["amx"]), ("fallback", ["amx", "vdpbf16ps", "vpdpbusd"])] {
            for precision in ["bf16", "int8"] {
                let r = try dinokit(["bench", "--weights", Self.model, "--batch", "1", "--size", "28", "--iterations", "1",
                                     "--warmup-seconds", "0", "--precision", precision, "--json"],
                                    environment: ["DINOKIT_TILES": tiles])
                XCTAssertEqual(r.status, 0, r.stderr)
                let kernel = try XCTUnwrap(r.json()["gemm_kernel"] as? String)
                XCTAssertFalse(refused.contains { kernel.contains($0) }, "DINOKIT_TILES=\(tiles) --precision \(precision): \(kernel)")
            }
        }
    }

    func testModelCommandsRunAtInt8() throws {
        let out = makeTemporaryDirectory("dinokit-int8")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let runs: [[String]] = [
            ["forward", "--weights", Self.model, "--input", fixturePath("golden/tiny-plain/small.npy"), "--out", out + "/f.npz"],
            ["embed", "--weights", Self.model, "--size", "28", "--quiet", "--out", out + "/e.npy", Self.image],
            ["pca", "--weights", Self.model, "--size", "28", "--out", out + "/p.png", Self.image],
            ["attention", "--weights", Self.model, "--size", "28", "--out", out + "/a.png", Self.image],
        ]
        for arguments in runs {
            let r = try dinokit(arguments + ["--precision", "int8"])
            XCTAssertEqual(r.status, 0, "\(arguments[0]): \(r.stderr)")
        }
    }
}
