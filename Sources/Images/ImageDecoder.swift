import Foundation
import TensorStore

/// The container formats DinoKit decodes.
public enum ImageFormat: String, Sendable {
    case jpeg
    case png

    /// Recognises a format by its magic bytes (the file name's extension is not consulted, as in
    /// PIL): JPEG starts with FF D8 FF, PNG with its 8-byte signature.
    public static func sniff(_ head: UnsafeRawBufferPointer) -> ImageFormat? {
        if head.count >= 3, head[0] == 0xFF, head[1] == 0xD8, head[2] == 0xFF { return .jpeg }
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        if head.count >= 8, head.prefix(8).elementsEqual(png) { return .png }
        return nil
    }
}

/// Decodes JPEG and PNG files to 8-bit RGB exactly as `PIL.Image.open(f).convert("RGB")` does.
/// Corrupt, truncated or unsupported data throws an `ImageError` naming the file; the C decoders
/// are driven so that they never abort or exit the process.
public enum ImageDecoder {
    /// Reads and decodes the file at `path` (memory-mapped, not copied). `strict` refuses
    /// files the decoder only warns about (see `JPEGDecoder`).
    public static func decode(path: String, strict: Bool = false) throws -> RGBImage {
        let file: MappedFile
        do {
            file = try MappedFile(path: path)
        } catch let error as TensorStoreError {
            if case let .io(_, message) = error { throw ImageError.unreadable(file: path, reason: message) }
            throw ImageError.unreadable(file: path, reason: error.description)
        }
        return try withExtendedLifetime(file) { try decode(file.bytes, file: path, strict: strict) }
    }

    /// Decodes an in-memory file; `file` names it in errors.
    public static func decode(_ bytes: UnsafeRawBufferPointer, file: String, strict: Bool = false) throws -> RGBImage {
        switch ImageFormat.sniff(bytes) {
        case .jpeg: return try JPEGDecoder.decode(bytes, file: file, strict: strict)
        case .png: return try PNGDecoder.decode(bytes, file: file)
        case nil:
            if bytes.isEmpty { throw ImageError.unsupported(file: file, detail: "empty file") }
            let head = bytes.prefix(8).map { hex($0) }.joined(separator: " ")
            throw ImageError.unsupported(file: file, detail: "not a JPEG or PNG file (starts with \(head))")
        }
    }

    public static func decode(_ bytes: [UInt8], file: String) throws -> RGBImage {
        try bytes.withUnsafeBytes { try decode($0, file: file) }
    }
}
