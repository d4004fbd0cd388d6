import Foundation
import Images
import TensorStore
import TestSupport
import XCTest

/// Damaged and unsupported files give a typed error naming the file; the C decoders never
/// abort or exit the process.
final class DamagedFileTests: XCTestCase {
    func kind(_ error: ImageError) -> String {
        switch error {
        case .unreadable: return "unreadable"
        case .unsupported: return "unsupported"
        case .corrupt: return "corrupt"
        case .truncated: return "truncated"
        case .invalidArgument: return "invalidArgument"
        }
    }

    func testEachDamagedFixtureGivesItsTypedErrorNamingTheFile() throws {
        let manifest = try ImageManifest.load()
        XCTAssertGreaterThanOrEqual(manifest.damaged.count, 10)
        for item in manifest.damaged {
            let path = imageFixture(item.file)
            do {
                _ = try ImageDecoder.decode(path: path)
                XCTFail("\(item.file) (\(item.what)) decoded; expected \(item.error)")
            } catch let error as ImageError {
                XCTAssertEqual(kind(error), item.error, "\(item.file) (\(item.what)): \(error)")
                XCTAssertEqual(error.file, path)
                XCTAssertTrue(error.description.contains(item.file), error.description)
            }
            // Where PIL rejects the file too, it agrees that it is unusable; the manifest records
            // the two files PIL accepts (an IDAT CRC mismatch, a GIF).
            if item.pil == "decodes" {
                XCTAssertTrue(["bad_idat_crc.png", "bad_gif.gif"].contains(item.file), "\(item.file): PIL decodes it")
            }
        }
    }

    /// Issue 15: scan data that ends before the frame's declared size (an EOI marker follows, so
    /// the structure walk sees a complete file) decoded "successfully" under --strict: libjpeg
    /// pads the missing rows and only warns. Default mode still accepts it (as PIL does); strict
    /// turns the warning into a typed error.
    func testShortScanDataIsRefusedOnlyWhenStrict() throws {
        let good = try Data(contentsOf: URL(fileURLWithPath: imageFixture("china_320x272_q90_420.jpg")))
        let bytes = [UInt8](good)
        guard let sos = (0..<(bytes.count - 1)).first(where: { bytes[$0] == 0xFF && bytes[$0 + 1] == 0xDA }) else {
            return XCTFail("no SOS")
        }
        let scanStart = sos + 2 + (Int(bytes[sos + 2]) << 8 | Int(bytes[sos + 3]))
        let eoi = bytes.count - 2
        XCTAssertEqual(Array(bytes[eoi...]), [0xFF, 0xD9])
        var short = Array(bytes[..<(scanStart + (eoi - scanStart) * 4 / 10)]) + [0xFF, 0xD9]
        if short[short.count - 3] == 0xFF { short.remove(at: short.count - 3) } // no dangling 0xFF before EOI
        let image = try ImageDecoder.decode(short, file: "short.jpg")
        XCTAssertEqual([image.width, image.height], [320, 272])
        XCTAssertThrowsError(try short.withUnsafeBytes { try ImageDecoder.decode($0, file: "short.jpg", strict: true) }) { error in
            guard case let .truncated(file, detail)? = error as? ImageError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, "short.jpg")
            XCTAssertTrue(detail.contains("--strict"), detail)
        }
        // An intact file is unaffected by strict.
        XCTAssertNoThrow(try bytes.withUnsafeBytes { try ImageDecoder.decode($0, file: "good.jpg", strict: true) })
    }

    func testMissingFileAndDirectoryAreUnreadable() {
        for path in ["/nonexistent/dinokit.jpg", NSTemporaryDirectory()] {
            XCTAssertThrowsError(try ImageDecoder.decode(path: path)) { error in
                guard case let .unreadable(file, _)? = error as? ImageError else { return XCTFail("\(error)") }
                XCTAssertEqual(file, path)
            }
        }
    }

    /// Every prefix of a file (cut every few bytes) either decodes or throws an ImageError —
    /// including the 16-bit RGBA PNG that goes through libpng's low-level reader.
    func testEveryPrefixIsHandledWithoutCrashing() throws {
        for name in ["china_128x96_restart_markers.jpg", "china_41x29_rgba16.png", "flower_38x26_la16_interlaced.png", "flower_35x27_p4_interlaced.png"] {
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: imageFixture(name))))
            var errors = 0
            for cut in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 400)) {
                do {
                    _ = try ImageDecoder.decode(Array(bytes[..<cut]), file: name)
                } catch is ImageError {
                    errors += 1
                }
            }
            XCTAssertGreaterThan(errors, 0, name)
        }
    }

    /// Seeded random byte flips: decoded or refused, never a crash.
    func testRandomCorruptionIsHandledWithoutCrashing() throws {
        var g = SyntheticInput(seed: 2024)
        for name in ["flower_96x64_ycck.jpg", "china_41x29_rgba16.png", "china_60x45_p8_trns.png", "flower_20x30_tiny.jpg"] {
            let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: imageFixture(name))))
            for _ in 0..<150 {
                var bytes = original
                for _ in 0..<(1 + Int(g.nextState() % 4)) {
                    let at = 8 + Int(g.nextState() % UInt32(bytes.count - 8))
                    bytes[at] = UInt8(truncatingIfNeeded: g.nextState() >> 24)
                }
                _ = try? ImageDecoder.decode(bytes, file: name)
            }
        }
    }
}
