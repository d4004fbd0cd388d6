#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one rule for a path that a file names relative to its own folder (ONNX external data, a
/// golden manifest's weights, inputs and outputs): it must stay inside that folder. Absolute
/// paths and `..` components are refused as written, and since a symbolic link may still point
/// elsewhere, the resolved file must lie under the resolved folder too.
public enum ContainedPath {
    public enum Refusal: Error, CustomStringConvertible, Equatable {
        case notRelative(String)
        case leavesFolder(String)
        case missing(String)
        case resolvesOutside(String)

        public var description: String {
            switch self {
            case let .notRelative(p): return "'\(p.escapedForMessage)' is not a path relative to its folder"
            case let .leavesFolder(p): return "'\(p.escapedForMessage)' leaves its folder ('..')"
            case let .missing(p): return "'\(p.escapedForMessage)' does not exist"
            case let .resolvesOutside(p): return "'\(p.escapedForMessage)' resolves outside its folder (a symbolic link?)"
            }
        }
    }

    /// `folder/relative`, resolved (links followed), when it exists and lies inside `folder`.
    public static func resolve(_ relative: String, in folder: String) throws -> String {
        guard !relative.isEmpty, !relative.hasPrefix("/"), !relative.contains("\\"), !relative.utf8.contains(0) else {
            throw Refusal.notRelative(relative)
        }
        guard !relative.split(separator: "/", omittingEmptySubsequences: false).contains("..") else {
            throw Refusal.leavesFolder(relative)
        }
        guard let realFolder = realPath(folder), let real = realPath(folder + "/" + relative) else {
            throw Refusal.missing(relative)
        }
        guard real.hasPrefix(realFolder.hasSuffix("/") ? realFolder : realFolder + "/") else {
            throw Refusal.resolvesOutside(relative)
        }
        return real
    }

    public static func realPath(_ p: String) -> String? {
        guard let r = realpath(p, nil) else { return nil }
        defer { free(r) }
        return String(cString: r)
    }
}
