import CZip
import TensorStore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// NumPy `.npz` archives: a zip of `.npy` members, member `a.npy` holding array `a` (as
/// `numpy.load` names them). Reading goes through libzip, so members may be stored (`np.savez`) or
/// deflated (`np.savez_compressed`); each member is read into memory, its size bounded by what the
/// archive can hold, and decoded by `NPY`. Writing produces what `np.savez` does (stored members)
/// with a small zip writer of its own, streaming each tensor straight into an `AtomicFileWriter`.
/// Store metadata has no place in an .npz and is not written.
public enum NPZ {
    /// deflate cannot expand data by more than about 1032:1; a larger declared size is a lie.
    static let maxDeflateRatio: UInt64 = 1032

    /// Tensors in archive order, named after their members without `.npy`.
    public static func read(path: String) throws -> TensorStore {
        // Opened through RegularFile (a FIFO would block libzip's own open); libzip owns the
        // descriptor once zip_fdopen succeeds.
        let fd: Int32
        do { fd = try RegularFile.openForReading(path) } catch let TensorStoreError.io(_, message) {
            throw NPZError.cannotOpen(path: path, message: message)
        } catch {
            throw NPZError.cannotOpen(path: path, message: "\(error)")
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw NPZError.cannotOpen(path: path, message: message)
        }
        let fileSize = UInt64(max(0, Int64(st.st_size)))

        var code: Int32 = 0
        guard let archive = zip_fdopen(fd, ZIP_RDONLY, &code) else {
            close(fd)
            throw NPZError.cannotOpen(path: path, message: libzipMessage(code: code))
        }
        defer { zip_discard(archive) }

        let count = zip_get_num_entries(archive, 0)
        guard count >= 0 else { throw NPZError.cannotOpen(path: path, message: "cannot list the archive's members") }
        var store = TensorStore()
        for index in 0..<UInt64(count) {
            var info = zip_stat_t()
            zip_stat_init(&info)
            guard zip_stat_index(archive, index, 0, &info) == 0, let cName = info.name else {
                throw NPZError.readFailed(path: path, member: "#\(index)", message: libzipMessage(archive))
            }
            let member = String(cString: cName)
            let required = UInt64(ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD)
            guard info.valid & required == required else {
                throw NPZError.readFailed(path: path, member: member, message: "sizes missing from the directory")
            }
            if member.hasSuffix("/") && info.size == 0 { continue } // a directory entry holds nothing
            guard member.hasSuffix(".npy") else { throw NPZError.notNPY(path: path, member: member) }
            if info.valid & UInt64(ZIP_STAT_ENCRYPTION_METHOD) != 0, info.encryption_method != UInt16(ZIP_EM_NONE) {
                throw NPZError.encrypted(path: path, member: member)
            }
            let limit: UInt64
            switch Int32(info.comp_method) {
            case ZIP_CM_STORE: limit = fileSize
            case ZIP_CM_DEFLATE: limit = min(fileSize, info.comp_size).multipliedReportingOverflow(by: maxDeflateRatio).partialValue + 1024
            default: throw NPZError.unsupportedCompression(path: path, member: member, method: Int(info.comp_method))
            }
            guard info.size <= limit, info.size <= UInt64(Int.max) else {
                throw NPZError.memberTooLarge(path: path, member: member, size: info.size, limit: limit)
            }
            let bytes = try readMember(archive, index: index, size: Int(info.size), path: path, member: member)
            let name = String(member.dropLast(4))
            let tensor = try bytes.withUnsafeBytes { try NPY.decode($0, name: "\(path):\(member)") }
            guard store[name] == nil else { throw NPZError.duplicateName(path: path, name: name) }
            try store.insert(tensor, named: name)
        }
        return store
    }

    /// Exactly `size` bytes of a member, then a check that nothing follows; reading to the end is
    /// also what makes libzip verify the CRC.
    static func readMember(_ archive: OpaquePointer, index: UInt64, size: Int, path: String, member: String) throws -> [UInt8] {
        guard let file = zip_fopen_index(archive, index, 0) else {
            throw NPZError.readFailed(path: path, member: member, message: libzipMessage(archive))
        }
        defer { zip_fclose(file) }
        func failure() -> NPZError {
            .readFailed(path: path, member: member, message: String(cString: zip_error_strerror(zip_file_get_error(file))))
        }
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        try bytes.withUnsafeMutableBytes { buffer in
            while done < size {
                let n = zip_fread(file, buffer.baseAddress! + done, UInt64(size - done))
                if n < 0 { throw failure() }
                if n == 0 { throw NPZError.truncatedMember(path: path, member: member, expected: size, got: done) }
                done += Int(n)
            }
        }
        var extra: UInt8 = 0
        let n = zip_fread(file, &extra, 1)
        if n < 0 { throw failure() }
        if n > 0 { throw NPZError.readFailed(path: path, member: member, message: "holds more than the \(size) bytes its directory entry declares") }
        return bytes
    }

    static func libzipMessage(code: Int32) -> String {
        var error = zip_error_t()
        zip_error_init_with_code(&error, code)
        defer { zip_error_fini(&error) }
        return String(cString: zip_error_strerror(&error))
    }

    static func libzipMessage(_ archive: OpaquePointer) -> String {
        String(cString: zip_error_strerror(zip_get_error(archive)))
    }

    // MARK: writing

    /// Atomic write, like `np.savez`: one stored `<name>.npy` member per tensor, in store order,
    /// through the same zip writer `.pth` files use. Tensors NumPy cannot hold (bf16, float8) are
    /// refused by `NPY` before anything is written.
    public static func write(_ store: TensorStore, to path: String) throws {
        var members: [(name: String, header: [UInt8], tensor: Tensor)] = []
        for (name, tensor) in store.tensors {
            members.append((name + ".npy", try NPY.headerBytes(dtype: tensor.dtype, shape: tensor.shape), tensor))
        }
        try AtomicFileWriter.write(to: path) { w in
            var zip = ZipWriter(output: w, alignment: 1)
            for m in members {
                var crc = ZipCRC32()
                crc.update(m.header)
                m.tensor.withContiguousBytes { crc.update($0) }
                try zip.addStored(name: m.name, size: m.header.count + m.tensor.byteCount, crc32: crc.value) { out in
                    try out.write(m.header)
                    try out.write(m.tensor)
                }
            }
            try zip.finish()
        }
    }
}

public enum NPZError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, message: String)
    /// A member that is not an `.npy` array.
    case notNPY(path: String, member: String)
    case encrypted(path: String, member: String)
    case unsupportedCompression(path: String, member: String, method: Int)
    /// The declared size is more than the archive can hold (stored: the file size; deflated:
    /// 1032 × the compressed size).
    case memberTooLarge(path: String, member: String, size: UInt64, limit: UInt64)
    case readFailed(path: String, member: String, message: String)
    case truncatedMember(path: String, member: String, expected: Int, got: Int)
    case duplicateName(path: String, name: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, message):
            return "\(path): cannot open as an .npz (zip) archive: \(message)"
        case let .notNPY(path, member):
            return "\(path): member '\(member)' is not an .npy array; DinoKit reads .npz archives of arrays only"
        case let .encrypted(path, member):
            return "\(path): member '\(member)' is encrypted"
        case let .unsupportedCompression(path, member, method):
            return "\(path): member '\(member)' uses compression method \(method); numpy writes stored (0) or deflated (8) members only"
        case let .memberTooLarge(path, member, size, limit):
            return "\(path): member '\(member)' declares \(size) bytes, more than the archive can hold (at most \(limit)): corrupt or hostile archive"
        case let .readFailed(path, member, message):
            return "\(path): cannot read member '\(member)': \(message)"
        case let .truncatedMember(path, member, expected, got):
            return "\(path): member '\(member)' ends after \(got) of its \(expected) bytes"
        case let .duplicateName(path, name):
            return "\(path): array '\(name)' appears more than once"
        }
    }
}
