import Foundation
import Formats
import Images
import TensorStore
import TestSupport
import XCTest

/// Fixtures/images/manifest.json, written by Scripts/fixtures/images.py (PIL and torchvision).
struct ImageManifest: Decodable {
    struct Normalization: Decodable {
        var mean: [Double]
        var std: [Double]
        var table: String
    }

    /// Every `rowStride`-th row of an (height, width, 3) uint8 array, and the CRC-32 of all of it.
    struct Rows: Decodable {
        var file: String
        var rowStride: Int
        var height: Int
        var width: Int
        var crc32: UInt32
    }

    struct Preset: Decodable {
        var name: String
        var shorterSide: Int?
        var maxSize: Int?
        var exact: [Int]?
        var crop: [Int]?
        var interpolation: String
        var mean: [Double]
        var std: [Double]
        var normalization: String
        var image: Rows
        var tensorShape: [Int]
        var tensorCrc32: UInt32

        var preprocess: Preprocess {
            var resizing: ResizeSize?
            if let shorterSide { resizing = .shorterSide(shorterSide, maxSize: maxSize) }
            if let exact { resizing = .exact(ImageSize(height: exact[0], width: exact[1])) }
            return Preprocess(resizing: resizing, crop: crop.map { ImageSize(height: $0[0], width: $0[1]) },
                              interpolation: Interpolation(rawValue: interpolation)!, mean: mean, std: std)
        }
    }

    struct Image: Decodable {
        var file: String
        var kind: String
        var pilMode: String
        var width: Int
        var height: Int
        var decoded: Rows
        var presets: [Preset]
    }

    struct Resize: Decodable {
        struct Input: Decodable {
            var lcgSeed: UInt32?
            var image: String?
            var width: Int
            var height: Int
        }
        var input: Input
        var width: Int
        var height: Int
        var filter: String
        var expected: String
    }

    struct Damaged: Decodable {
        var file: String
        var error: String
        var what: String
        var pil: String
    }

    var pillow: String
    var torchvision: String
    var normalization: [String: Normalization]
    var images: [Image]
    var resize: [Resize]
    var damaged: [Damaged]

    static func load() throws -> ImageManifest {
        let data = try Data(contentsOf: URL(fileURLWithPath: imageFixture("manifest.json")))
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(ImageManifest.self, from: data)
    }
}

func imageFixture(_ name: String) -> String { fixturePath("images/" + name) }

/// The bytes of a uint8 .npy fixture, C order.
func npyBytes(_ relative: String) throws -> (bytes: [UInt8], shape: [Int]) {
    let t = try NPY.read(path: imageFixture(relative))
    precondition(t.dtype == .u8, "\(relative) is \(t.dtype), expected uint8")
    return (t.withContiguousBytes { Array($0) }, t.shape.dims)
}

/// A float32 .npy fixture.
func npyFloats(_ relative: String) throws -> (values: [Float], shape: [Int]) {
    let t = try NPY.read(path: imageFixture(relative))
    precondition(t.dtype == .f32, "\(relative) is \(t.dtype), expected float32")
    return (t.floats(), t.shape.dims)
}

/// zlib's CRC-32 (the one Python's `zlib.crc32` computes).
func crc32(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        crc = crcTable[Int((crc ^ UInt32(b)) & 0xFF)] ^ (crc >> 8)
    }
    return crc ^ 0xFFFF_FFFF
}

func crc32(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { crc32($0) } }

private let crcTable: [UInt32] = (0..<256).map { n -> UInt32 in
    var c = UInt32(n)
    for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
    return c
}

/// How close two equally long byte arrays are.
struct ByteMatch: CustomStringConvertible {
    var identical = 0
    var total = 0
    var maxDiff = 0

    mutating func add(_ a: UInt8, _ b: UInt8) {
        total += 1
        let d = abs(Int(a) - Int(b))
        if d == 0 { identical += 1 }
        maxDiff = max(maxDiff, d)
    }

    mutating func add(_ other: ByteMatch) {
        identical += other.identical
        total += other.total
        maxDiff = max(maxDiff, other.maxDiff)
    }

    var fraction: Double { total == 0 ? 1 : Double(identical) / Double(total) }

    var description: String {
        String(format: "%d/%d identical (%.4f%%), max diff %d", identical, total, 100 * fraction, maxDiff)
    }
}

/// Compares an (height, width, 3) image with the stored rows of PIL's.
func compareRows(_ image: RGBImage, _ rows: ImageManifest.Rows) throws -> ByteMatch {
    let (expected, shape) = try npyBytes(rows.file)
    var m = ByteMatch()
    guard image.height == rows.height, image.width == rows.width, shape.count == 3, shape[1] == rows.width, shape[2] == 3 else {
        XCTFail("\(rows.file): image is \(image.width)x\(image.height), PIL's \(rows.width)x\(rows.height) (stored \(shape))")
        return m
    }
    let rowLength = rows.width * 3
    for (i, y) in stride(from: 0, to: rows.height, by: rows.rowStride).enumerated() {
        for j in 0..<rowLength { m.add(image.pixels[y * rowLength + j], expected[i * rowLength + j]) }
    }
    return m
}

/// The (width x height x 3) LCG noise image: byte = state >> 24 of `SyntheticInput(seed:)`,
/// as Scripts/fixtures/images.py builds it.
func lcgImage(seed: UInt32, width: Int, height: Int) throws -> RGBImage {
    var g = SyntheticInput(seed: seed)
    let bytes = (0..<(width * height * 3)).map { _ in UInt8(g.nextState() >> 24) }
    return try RGBImage(width: width, height: height, pixels: bytes)
}
