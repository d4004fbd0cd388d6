import Foundation
import Formats
import TensorStore

/// Reads a weights file (or a transformers model folder) into a store, choosing the reader by
/// content, not by extension: safetensors, `torch.save` (zip or legacy), or an HF folder. Names
/// stay as the file has them; `Model(store:)` translates layouts. The one entry point the
/// verifier and the CLI use, so a new format is added here once.
public func loadWeights(path: String) throws -> TensorStore {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw WeightsError.notFound(path: path)
    }
    if isDirectory.boolValue {
        guard HFFolder.isHFFolder(path: path) else { throw WeightsError.unrecognized(path: path) }
        return try HFFolder.read(path: path)
    }
    let file = try MappedFile(path: path)
    let isSafetensors = withExtendedLifetime(file) {
        Safetensors.isSafetensors(UnsafeRawBufferPointer(rebasing: file.bytes[0..<Swift.min(file.count, 4096)]),
                                  fileSize: file.count)
    }
    if isSafetensors { return try Safetensors.read(file: file) }
    let head = withExtendedLifetime(file) { Array(file.bytes[0..<Swift.min(file.count, 64)]) }
    let isTorch = head.withUnsafeBytes { TorchCheckpoint.isZip($0) || TorchCheckpoint.isLegacy($0) }
    if isTorch { return try TorchCheckpoint.read(path: path).store }
    throw WeightsError.unrecognized(path: path)
}

public enum WeightsError: Error, CustomStringConvertible, Equatable {
    case notFound(path: String)
    case unrecognized(path: String)

    public var description: String {
        switch self {
        case let .notFound(path): return "\(path): no such file or directory"
        case let .unrecognized(path):
            return "\(path): not a safetensors file, torch.save checkpoint or transformers model folder"
        }
    }
}
