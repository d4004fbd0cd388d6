#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TensorStore

/// What every fuzz target shares: the input as a file (for readers that only take paths), as a
/// file in a folder of its own (for readers that look beside it), and a walk over the tensors a
/// reader returned that touches their bytes the way a consumer would.
///
/// A thrown error is a correct answer to hostile input; only a trap, a sanitizer report, a hang
/// (`-timeout`) or a memory blow-up (`-rss_limit_mb` / `-malloc_limit_mb`) is a finding.
public enum Fuzz {
    /// A folder of this process's own under `$TMPDIR` (else /dev/shm, else /tmp), removed at exit.
    /// Scripts/fuzz points `TMPDIR` at a campaign folder, so a crashed process leaves nothing
    /// elsewhere.
    public static let folder: String = {
        let env = getenv("TMPDIR").map { String(cString: $0) }
        let base = env.flatMap { $0.isEmpty ? nil : $0 } ?? (access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp")
        var template = Array("\(base)/dinokit-fuzz-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else {
            perror("dinokit fuzz: mkdtemp in \(base)")
            exit(2)
        }
        let path = String(cString: template.map { UInt8(bitPattern: $0) } + [0])
        atexit { Fuzz.removeFolder() }
        return path
    }()

    private static func removeFolder() {
        guard let dir = opendir(folder) else { return }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if name != "." && name != ".." { unlink(folder + "/" + name) }
        }
        closedir(dir)
        rmdir(folder)
    }

    /// Writes `bytes` to `folder/name` (replacing it) and returns the path.
    @discardableResult
    public static func write(_ bytes: UnsafeRawBufferPointer, named name: String) -> String {
        let path = folder + "/" + name
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            perror("dinokit fuzz: open \(path)")
            exit(2)
        }
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                perror("dinokit fuzz: write \(path)")
                exit(2)
            }
            done += n
        }
        close(fd)
        return path
    }

    @discardableResult
    public static func write(_ bytes: [UInt8], named name: String) -> String {
        bytes.withUnsafeBytes { write($0, named: name) }
    }

    /// Removes `folder/name` if it is there.
    public static func remove(_ name: String) { unlink(folder + "/" + name) }

    /// The libFuzzer input as a buffer (libFuzzer may pass a null pointer for an empty input).
    public static func input(_ data: UnsafePointer<UInt8>?, _ size: Int) -> UnsafeRawBufferPointer {
        guard let data, size > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: data, count: size)
    }

    /// Splits `bytes` at the first occurrence of `separator`: (before, after), or (bytes, nil).
    public static func split(_ bytes: UnsafeRawBufferPointer, at separator: [UInt8]) -> (UnsafeRawBufferPointer, UnsafeRawBufferPointer?) {
        let n = separator.count
        if bytes.count >= n {
            for i in 0...(bytes.count - n) where bytes[i] == separator[0] {
                if (0..<n).allSatisfy({ bytes[i + $0] == separator[$0] }) {
                    return (UnsafeRawBufferPointer(rebasing: bytes[..<i]), UnsafeRawBufferPointer(rebasing: bytes[(i + n)...]))
                }
            }
        }
        return (bytes, nil)
    }

    /// Reads every element byte of every tensor (materialising non-contiguous views, as a model
    /// load or a converter would) and the metadata, so a view that points outside its storage or
    /// claims more elements than can exist shows up here rather than in a user's program.
    public static func touch(_ store: TensorStore) {
        var sum: UInt64 = 0
        for (name, tensor) in store.tensors {
            sum &+= UInt64(name.utf8.count)
            sum &+= touch(tensor)
        }
        for (key, value) in store.metadata { sum &+= UInt64(key.utf8.count &+ value.utf8.count) }
        blackHole(sum)
    }

    public static func touch(_ tensor: Tensor) -> UInt64 {
        tensor.withContiguousBytes { bytes in
            var sum: UInt64 = 0
            for b in bytes { sum &+= UInt64(b) }
            return sum
        }
    }

    @inline(never)
    public static func blackHole<T>(_ value: T) { withExtendedLifetime(value) {} }
}
