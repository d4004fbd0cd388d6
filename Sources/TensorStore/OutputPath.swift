#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one rule for where a command may write, checked by `AtomicFileWriter` for every file and
/// by each command before it starts work (so a bad path fails in a second, not after the model
/// ran):
/// - the folder the output goes in must exist: DinoKit does not create folders, except an output
///   that is itself a folder (an HF folder, a run, a report, a feature cache), whose parent must
///   exist (`createFolder`);
/// - a file output must not be an existing directory, a folder output not an existing file;
/// - the output must not be one of the inputs, under any name (a symbolic or hard link to it
///   is the same file: device and inode are compared).
/// Errors name the output the user gave, never a temporary or partial file beside it.
public enum OutputPath {
    public enum Problem: Error, CustomStringConvertible, Equatable {
        case missingFolder(output: String, folder: String)
        case parentNotAFolder(output: String, folder: String)
        case isDirectory(output: String)
        case isFile(output: String)
        case sameAsInput(output: String, input: String)

        public var description: String {
            switch self {
            case let .missingFolder(output, folder):
                return "\(output.escapedForMessage): folder \(folder.escapedForMessage) does not exist; create it first (DinoKit does not create folders for outputs)"
            case let .parentNotAFolder(output, folder):
                return "\(output.escapedForMessage): \(folder.escapedForMessage) is not a folder"
            case let .isDirectory(output):
                return "\(output.escapedForMessage): is a directory; give a file name for the output"
            case let .isFile(output):
                return "\(output.escapedForMessage): exists and is a file; an HF-folder output needs a folder path"
            case let .sameAsInput(output, input):
                return "\(output.escapedForMessage): is the input \(input.escapedForMessage) (the same file); write to another path"
            }
        }
    }

    /// Checks a file output (see the type). `inputs` are the files (or folders) the command reads.
    public static func checkFile(_ output: String, inputs: [String] = []) throws {
        try checkParent(of: output)
        if mode(output) == S_IFDIR { throw Problem.isDirectory(output: output) }
        try checkNotAnInput(output, inputs: inputs)
    }

    /// Checks a folder output (an HF folder, a report folder): its parent must exist; it may
    /// exist as a folder. `writing` are the names of the files that go inside it (each must not
    /// be an input either: `convert hf/model.safetensors hf/`).
    public static func checkFolder(_ output: String, inputs: [String] = [], writing names: [String] = []) throws {
        let trimmed = output.count > 1 && output.hasSuffix("/") ? String(output.dropLast()) : output
        try checkParent(of: trimmed)
        if let m = mode(trimmed), m != S_IFDIR { throw Problem.isFile(output: output) }
        try checkNotAnInput(trimmed, inputs: inputs)
        for name in names {
            let file = trimmed + "/" + name
            if mode(file) == S_IFDIR { throw Problem.isDirectory(output: file) }
            try checkNotAnInput(file, inputs: inputs)
        }
    }

    /// Checks a folder output and creates it when missing (one level: its parent exists).
    /// Returns whether it was created, so a writer that fails can remove what it made.
    @discardableResult
    public static func createFolder(_ output: String, inputs: [String] = [], writing names: [String] = []) throws -> Bool {
        try checkFolder(output, inputs: inputs, writing: names)
        let trimmed = output.count > 1 && output.hasSuffix("/") ? String(output.dropLast()) : output
        if mode(trimmed) == S_IFDIR { return false }
        guard mkdir(trimmed, 0o755) == 0 || errno == EEXIST else {
            throw TensorStoreError.io(path: output, message: "cannot create the folder: \(String(cString: strerror(errno)))")
        }
        return true
    }

    /// The folder a path's last component lives in ("." for a bare name).
    public static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let d = String(path[..<slash])
        return d.isEmpty ? "/" : d
    }

    static func checkParent(of output: String) throws {
        let parent = folder(of: output)
        switch mode(parent) {
        case nil: throw Problem.missingFolder(output: output, folder: parent)
        case S_IFDIR?: return
        default: throw Problem.parentNotAFolder(output: output, folder: parent)
        }
    }

    static func checkNotAnInput(_ output: String, inputs: [String]) throws {
        guard let id = FileIdentity(path: output) else { return }
        for input in inputs where FileIdentity(path: input) == id {
            throw Problem.sameAsInput(output: output, input: input)
        }
    }

    static func mode(_ path: String) -> mode_t? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return st.st_mode & S_IFMT
    }
}
