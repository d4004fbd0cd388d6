#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import OrderedCollections
import TensorStore

/// A shard index (`model.safetensors.index.json`, `pytorch_model.bin.index.json`):
/// `{"metadata": {...}, "weight_map": {tensor name: shard file name}}`. One set of rules for both
/// kinds: the index is bounded in size and strict JSON; each shard is a plain file name beside the
/// index; every tensor the index lists is in the shard it names, and every tensor a shard holds is
/// listed for that shard (so none is in two shards).
struct HFShardIndex {
    /// Tensor name -> shard file name, in the index's order.
    var weightMap: OrderedDictionary<String, String>
    /// Every shard once, sorted by name (the order transformers reads them in).
    var shards: [String]
    let path: String

    /// Largest index DinoKit reads (a ViT-g index is ~50 KB).
    static let maxBytes = 16 << 20

    init(path: String) throws {
        self.path = path
        let file = try MappedFile(path: path)
        guard file.count <= Self.maxBytes else { throw HFFolderError.badIndex(path: path, reason: "\(file.count) bytes, more than \(Self.maxBytes)") }
        if let bad = JSONReader.firstInvalidUTF8Offset(file.bytes) {
            throw HFFolderError.badIndex(path: path, reason: "invalid UTF-8 at byte \(bad)")
        }
        var weightMap: OrderedDictionary<String, String> = [:]
        var r = JSONReader(file.bytes)
        do {
            var object = try r.beginObject()
            while let key = try r.nextKey(&object) {
                guard key == "weight_map" else { try r.skipValue(); continue }
                var map = try r.beginObject()
                while let name = try r.nextKey(&map) {
                    guard try r.peekKind() == .string else { throw HFFolderError.badIndex(path: path, reason: "weight_map['\(name.escapedForMessage)'] is not a file name") }
                    guard weightMap[name] == nil else { throw HFFolderError.badIndex(path: path, reason: "'\(name.escapedForMessage)' listed twice") }
                    weightMap[name] = try r.readString()
                }
            }
            try r.finish()
        } catch let e as JSONReader.SyntaxError {
            throw HFFolderError.badIndex(path: path, reason: "\(e.message) at byte \(e.offset)")
        }
        guard !weightMap.isEmpty else { throw HFFolderError.badIndex(path: path, reason: "no weight_map entries") }
        // Once each; the set keeps this linear (an index of a million distinct shard names made
        // an array search quadratic).
        var shards: [String] = []
        var seen: Set<String> = []
        for shard in weightMap.values where seen.insert(shard).inserted {
            guard Self.isPlainFileName(shard) else {
                throw HFFolderError.badIndex(path: path, reason: "shard name '\(shard.escapedForMessage)' is not a plain file name")
            }
            shards.append(shard)
        }
        self.weightMap = weightMap
        self.shards = shards.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// Shards live beside the index: a name with a folder part could point anywhere. Symbolic
    /// links are followed (the Hugging Face cache's snapshot folders are links into its blob
    /// store, as transformers allows too); only the name is judged.
    static func isPlainFileName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.utf8.contains(where: { $0 == UInt8(ascii: "/") || $0 == 0 })
    }

    /// Every shard read with `readShard` (given its path) into one store, in shard order; metadata
    /// of the shards merged (the first shard's value wins).
    func load(folder: String, readShard: (String) throws -> TensorStore) throws -> TensorStore {
        var store = TensorStore()
        for shard in shards {
            let shardPath = HFFolder.join(folder, shard)
            guard HFFolder.isFile(shardPath) else {
                let listed = weightMap.first { $0.value == shard }?.key ?? "?"
                throw HFFolderError.badIndex(path: path, reason: "shard '\(shard.escapedForMessage)' (listed for '\(listed.escapedForMessage)') is missing or not a file: an incomplete download?")
            }
            let part = try readShard(shardPath)
            for (name, t) in part.tensors {
                if store[name] != nil {
                    // It passed the check below in the shard read first, which is the one the index names.
                    throw HFFolderError.badIndex(path: path, reason: "tensor '\(name.escapedForMessage)' is in two shards, \((weightMap[name] ?? "?").escapedForMessage) and \(shard.escapedForMessage)")
                }
                guard weightMap[name] == shard else {
                    throw HFFolderError.badIndex(path: path, reason: "tensor '\(name.escapedForMessage)' is in \(shard.escapedForMessage) but the index says \((weightMap[name] ?? "nothing").escapedForMessage)")
                }
                try store.insert(t, named: name)
            }
            for (k, v) in part.metadata where store.metadata[k] == nil { store.metadata[k] = v }
        }
        if let missing = weightMap.keys.first(where: { store[$0] == nil }) {
            throw HFFolderError.badIndex(path: path, reason: "tensor '\(missing.escapedForMessage)' is not in \((weightMap[missing] ?? "?").escapedForMessage)")
        }
        return store
    }
}
