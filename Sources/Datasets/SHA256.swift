import CCrypto
import Foundation
import TensorStore

/// SHA-256 (FIPS 180-4), for the feature cache: the manifest records the digest of the weights
/// file and of the dataset, so cached features are reused only for the very same bytes. A
/// cryptographic digest rather than (size, mtime) or a fast non-cryptographic hash because a
/// stale cache silently gives wrong accuracies; hashing a ViT-S/14 checkpoint (88 MB) takes
/// a fraction of a second, against minutes of feature extraction.
///
/// The digest itself is OpenSSL's libcrypto (EVP interface), linked as a Debian system library
/// like the other C libraries. apple/swift-crypto was the alternative: measured on this 2-core
/// machine, a clean `swift build -j 2` of a one-file package using it took 5 min 30 s (it compiles
/// its vendored BoringSSL, 447 build steps), against 20 s for the same package using libcrypto,
/// which libssl-dev already provides prebuilt.
///
/// A value type, like the hand-written hasher it replaces: copying a hasher and updating the copy
/// leaves the original alone (the EVP context is copied on write).
public struct SHA256 {
    private final class Context {
        let pointer: OpaquePointer

        init() {
            // Allocation and initialisation of a built-in digest fail only when memory runs out.
            guard let p = EVP_MD_CTX_new(), EVP_DigestInit_ex(p, EVP_sha256(), nil) == 1 else {
                preconditionFailure("OpenSSL could not allocate a SHA-256 context")
            }
            pointer = p
        }

        init(copying other: Context) {
            guard let p = EVP_MD_CTX_new(), EVP_MD_CTX_copy_ex(p, other.pointer) == 1 else {
                preconditionFailure("OpenSSL could not copy a SHA-256 context")
            }
            pointer = p
        }

        deinit { EVP_MD_CTX_free(pointer) }
    }

    private var context = Context()

    public init() {}

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        if !isKnownUniquelyReferenced(&context) { context = Context(copying: context) }
        EVP_DigestUpdate(context.pointer, base, bytes.count)
    }

    /// The digest; the hasher should not be used afterwards.
    public mutating func finalize() -> [UInt8] {
        if !isKnownUniquelyReferenced(&context) { context = Context(copying: context) }
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context.pointer, &out, &length)
        return Array(out.prefix(Int(length)))
    }

    public mutating func hexDigest() -> String {
        finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// The digest of a whole file, read in 4 MB pieces.
    public static func hexDigest(ofFile path: String) throws -> String {
        let fd: Int32
        do { fd = try RegularFile.openForReading(path) } catch {
            throw EvaluationError.io(path: path, detail: "cannot open for hashing: \(error)")
        }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        defer { try? handle.close() }
        var h = SHA256()
        while true {
            let chunk: Data
            do { chunk = try handle.read(upToCount: 4 << 20) ?? Data() } catch {
                throw EvaluationError.io(path: path, detail: "read failed while hashing: \(error.localizedDescription)")
            }
            if chunk.isEmpty { break }
            chunk.withUnsafeBytes { h.update($0) }
        }
        return h.hexDigest()
    }
}
