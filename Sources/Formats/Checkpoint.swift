import TensorStore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The container formats DinoKit reads and writes, spelled as `inspect --json` reports them.
public enum CheckpointFormat: String, Sendable, CaseIterable {
    case pytorchZip = "pytorch-zip"
    case pytorchLegacy = "pytorch-legacy"
    case safetensors
    case hfFolder = "hf-folder"
    case npz
    case npy
    case onnx
}

public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case notFound(String)
    case unrecognised(path: String, head: String)
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case let .notFound(path): return "\(path): no such file or directory"
        case let .unrecognised(path, head):
            return "\(path): not a checkpoint DinoKit recognises (first bytes \(head)); expected a PyTorch .pth (zip or legacy), safetensors, an HF folder, .npz or .npy"
        case let .cannotWrite(path, reason): return "\(path): \(reason)"
        }
    }
}

/// One entry point over every reader and writer: the format is sniffed from content, never from
/// the file name; only when writing does the name (or `--format`) choose.
public enum Checkpoint {
    /// What a file or folder holds, by its first bytes (folders: config.json and weights, `HFFolder`).
    public static func detectFormat(path: String) throws -> CheckpointFormat {
        try sniff(path: path).format
    }

    /// Reads any supported checkpoint into a tensor store (names as the file has them).
    public static func read(path: String) throws -> (format: CheckpointFormat, store: TensorStore) {
        let sniffed = try sniff(path: path)
        // The file mapped (and the zip directory walked) for sniffing is the one read, rather than
        // opening and walking it again: that was a third of reading a .pth's tensor list.
        if let archive = sniffed.archive {
            if sniffed.format == .npz { return (.npz, try NPZ.read(archive)) }
            return (.pytorchZip, try TorchCheckpointReader.readZip(archive).store)
        }
        if let file = sniffed.file {
            switch sniffed.format {
            case .pytorchLegacy:
                return (.pytorchLegacy, try withExtendedLifetime(file) { try TorchCheckpointReader.readLegacy(file) }.store)
            case .safetensors:
                return (.safetensors, try Safetensors.read(file: file))
            default:
                break
            }
        }
        switch sniffed.format {
        case .pytorchZip, .pytorchLegacy: return (sniffed.format, try TorchCheckpoint.read(path: path).store)
        case .safetensors: return (sniffed.format, try Safetensors.read(path: path))
        case .hfFolder: return (sniffed.format, try HFFolder.read(path: path))
        case .npz: return (sniffed.format, try NPZ.read(path: path))
        case .onnx: return (sniffed.format, try ONNXModelReader.read(path: path))
        case .npy:
            var store = TensorStore()
            try store.insert(try NPY.read(path: path), named: "array")
            return (sniffed.format, store)
        }
    }

    /// The format, and for files the mapping it was sniffed from (plus the zip directory for
    /// zips), for `read` to go on with.
    private static func sniff(path: String) throws -> (format: CheckpointFormat, file: MappedFile?, archive: ZipArchive?) {
        var st = stat()
        guard stat(path, &st) == 0 else { throw CheckpointError.notFound(path) }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            if HFFolder.isHFFolder(path: path) { return (.hfFolder, nil, nil) }
            throw CheckpointError.unrecognised(path: path, head: "(a directory without config.json and one of \(HFWeightsForm.allCases.map(\.file).joined(separator: ", ")))")
        }
        let file = try MappedFile(path: path)
        return try withExtendedLifetime(file) {
            let head = UnsafeRawBufferPointer(rebasing: file.bytes.prefix(64))
            if NPY.isNPY(head) { return (.npy, file, nil) }
            if TorchCheckpoint.isZip(head) {
                // NPZ and .pth are both zips: a .pth has a data.pkl entry, an NPZ .npy members.
                let archive = try ZipArchive(file: file)
                let isTorch = archive.entries.contains { $0.name.hasSuffix("/data.pkl") || $0.name == "data.pkl" }
                return (isTorch ? .pytorchZip : .npz, file, archive)
            }
            if TorchCheckpoint.isLegacy(head) { return (.pytorchLegacy, file, nil) }
            if Safetensors.isSafetensors(head, fileSize: file.count) { return (.safetensors, file, nil) }
            if ONNXModelReader.isONNX(head: head) { return (.onnx, file, nil) }
            let hex = head.prefix(8).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: " ")
            throw CheckpointError.unrecognised(path: path, head: hex)
        }
    }

    /// The format a path asks for when writing: by extension, or a folder for HF.
    public static func outputFormat(forPath path: String) -> CheckpointFormat? {
        let lower = path.lowercased()
        if lower.hasSuffix("/") { return .hfFolder }
        if lower.hasSuffix(".safetensors") { return .safetensors }
        if lower.hasSuffix(".pth") || lower.hasSuffix(".pt") || lower.hasSuffix(".bin") || lower.hasSuffix(".ckpt") { return .pytorchZip }
        if lower.hasSuffix(".npz") { return .npz }
        if lower.hasSuffix(".onnx") { return .onnx }
        var st = stat()
        if stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR { return .hfFolder }
        if !(lower.split(separator: "/").last ?? "").contains(".") { return .hfFolder }
        return nil
    }

    /// Writes `store` (already in the names the target should have) atomically.
    public static func write(_ store: TensorStore, to path: String, format: CheckpointFormat) throws {
        switch format {
        case .safetensors: try Safetensors.write(store, to: path)
        case .pytorchZip: try TorchCheckpoint.write(store, to: path)
        case .npz: try NPZ.write(store, to: path)
        case .hfFolder: try HFFolder.write(hub: store, to: path)
        case .onnx:
            throw CheckpointError.cannotWrite(path: path, reason: "an ONNX file is a graph, not a checkpoint: use `dinokit export-onnx --weights W --out \(path)`")
        case .pytorchLegacy, .npy:
            throw CheckpointError.cannotWrite(path: path, reason: "DinoKit does not write \(format.rawValue) files; use .pth, .safetensors, .npz or a folder")
        }
    }
}
