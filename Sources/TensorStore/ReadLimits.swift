#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How much memory reading one file may allocate because the file says so: inflated zip members,
/// tensors materialised from overlapping views (stride 0), names built from the object tree.
/// Bytes that are only memory-mapped are not counted. A hostile file of a few bytes can claim
/// gigabytes; this bound turns that into `TensorStoreError.memoryLimitExceeded` instead of an
/// out-of-memory abort. A real file that needs more (a deflated multi-gigabyte checkpoint) can be
/// read by raising the limit: pass `ReadLimits(memoryBytes:)`, or set `DINOKIT_READ_MEMORY_LIMIT`
/// (bytes, or with a K/M/G/T suffix: `16G`) for the command-line tool.
public struct ReadLimits: Sendable, Equatable {
    public var memoryBytes: Int

    public init(memoryBytes: Int = ReadLimits.defaultMemoryBytes) {
        self.memoryBytes = memoryBytes
    }

    /// 4 GiB: more than any uncompressed DINOv2 checkpoint needs beyond its mapped storages.
    public static let defaultMemoryBytes = 4 << 30
    public static let environmentVariable = "DINOKIT_READ_MEMORY_LIMIT"

    /// The defaults, with `DINOKIT_READ_MEMORY_LIMIT` applied when it is set (read once). An
    /// invalid value cannot be reported from here, so it leaves the default: a program that lets
    /// users set the variable checks it first with `fromEnvironment()` (the `dinokit` tool does,
    /// at startup) so that a limit the user asked for is never silently ignored.
    public static let `default`: ReadLimits = (try? fromEnvironment()) ?? ReadLimits()

    /// The defaults with `DINOKIT_READ_MEMORY_LIMIT` applied; throws
    /// `ReadLimitsError.invalidEnvironmentValue` when it is set to something `parseByteCount`
    /// does not accept (`abc`, `-5`, `0`, an empty string).
    public static func fromEnvironment() throws -> ReadLimits {
        guard let raw = getenv(environmentVariable).map({ String(cString: $0) }) else { return ReadLimits() }
        guard let bytes = parseByteCount(raw) else {
            throw ReadLimitsError.invalidEnvironmentValue(variable: environmentVariable, value: raw)
        }
        return ReadLimits(memoryBytes: bytes)
    }

    /// "123", "64K", "512M", "16G", "1T" (powers of 1024); nil when not a positive size.
    public static func parseByteCount(_ text: String) -> Int? {
        var digits = Substring(text.trimmingSpaces())
        var scale = 1
        if let last = digits.last, let power = ["K": 10, "M": 20, "G": 30, "T": 40][last.uppercased()] {
            scale = 1 << power
            digits = digits.dropLast()
        }
        guard let n = Int(digits), n > 0, let bytes = Checked.product(n, scale) else { return nil }
        return bytes
    }
}

/// A read limit the user set that cannot be applied.
public enum ReadLimitsError: Error, CustomStringConvertible, Equatable {
    case invalidEnvironmentValue(variable: String, value: String)

    public var description: String {
        switch self {
        case let .invalidEnvironmentValue(variable, value):
            return "\(variable)='\(value.escapedForMessage)' is not a size: give a positive number of bytes, "
                + "optionally with a K, M, G or T suffix (powers of 1024), e.g. 16G; or unset it for the 4 GiB default"
        }
    }
}

private extension String {
    func trimmingSpaces() -> String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}

/// What one read has allocated so far against `ReadLimits.memoryBytes`. Cumulative, so many
/// members or views that each fit cannot add up to more (zip members may overlap in the file).
/// One budget per read; not shared between threads.
public final class MemoryBudget {
    public let limits: ReadLimits
    public private(set) var used = 0

    public init(_ limits: ReadLimits = .default) {
        self.limits = limits
    }

    /// Records `bytes` about to be allocated for `what` (say where: file, entry, tensor name),
    /// or throws when they would exceed the limit.
    public func charge(_ bytes: Int, for what: @autoclosure () -> String) throws {
        guard bytes >= 0, let total = Checked.sum(used, bytes), total <= limits.memoryBytes else {
            throw TensorStoreError.memoryLimitExceeded(what: what(), bytes: bytes, limit: limits.memoryBytes)
        }
        used = total
    }
}
