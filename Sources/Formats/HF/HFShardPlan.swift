import TensorStore

/// How transformers' `save_pretrained(max_shard_size=)` splits weights into files (huggingface_hub
/// `split_state_dict_into_shards_factory`), so a DinoKit folder has the files transformers would
/// write: tensors in order fill a shard until the next would take it past the maximum, which then
/// starts a new shard; a tensor larger than the maximum gets a shard of its own, placed before the
/// shard being filled (huggingface_hub's order, kept so the file names match). One shard is
/// written as `model.safetensors` without an index; n > 1 as `model-0000k-of-0000n.safetensors`
/// plus `model.safetensors.index.json`. The order is the store's: for an HF rendering, the module
/// order transformers 4 saved in (transformers 5 sorts its in-memory names first; any split
/// loads the same).
public struct HFShardPlan: Sendable {
    public struct Shard: Sendable {
        public var file: String
        /// Tensor names, in the store's order.
        public var names: [String]
    }

    public private(set) var shards: [Shard]
    /// The bytes of every tensor (the index's `metadata.total_size`).
    public let totalSize: Int

    public var isSharded: Bool { shards.count > 1 }

    /// `maxShardSize` nil: everything in one file.
    public init(_ store: TensorStore, maxShardSize: Int?) {
        var groups: [[String]] = []
        var current: [String] = []
        var currentSize = 0
        var total = 0
        for (name, tensor) in store.tensors {
            let size = tensor.byteCount
            total += size
            guard let limit = maxShardSize else { current.append(name); continue }
            if size > limit {
                groups.append([name])
                continue
            }
            if currentSize + size > limit, !current.isEmpty {
                groups.append(current)
                current = []
                currentSize = 0
            }
            current.append(name)
            currentSize += size
        }
        if !current.isEmpty || groups.isEmpty { groups.append(current) }
        let n = groups.count
        shards = groups.enumerated().map { k, names in
            Shard(file: n == 1 ? HFWeightsForm.safetensors.file : Self.shardFile(k + 1, of: n), names: names)
        }
        totalSize = total
    }

    /// `model-00002-of-00005.safetensors`: five digits at least, as `{:05d}` formats them.
    static func shardFile(_ k: Int, of n: Int) -> String {
        func padded(_ v: Int) -> String { String(repeating: "0", count: Swift.max(0, 5 - String(v).count)) + String(v) }
        return "model-\(padded(k))-of-\(padded(n)).safetensors"
    }

    /// A shard file name this plan's naming could have produced (for removing shards of an
    /// earlier write that the new one does not replace).
    static func isShardFileName(_ name: String) -> Bool {
        guard name.hasPrefix("model-"), name.hasSuffix(".safetensors") else { return false }
        let middle = name.dropFirst("model-".count).dropLast(".safetensors".count)
        let parts = middle.split(separator: "-", omittingEmptySubsequences: false)
        func isNumber(_ s: Substring) -> Bool { s.count >= 5 && s.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }
        return parts.count == 3 && parts[1] == "of" && isNumber(parts[0]) && isNumber(parts[2])
    }

    /// The index as transformers writes it (`json.dumps(index, indent=2, sort_keys=True)` and a
    /// newline): `{"metadata": {"total_size": N}, "weight_map": {name: shard}}`, names sorted.
    public func indexJSON() -> String {
        var entries: [(name: String, file: String)] = []
        for shard in shards { for name in shard.names { entries.append((name, shard.file)) } }
        entries.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        var out: [UInt8] = Array("{\n  \"metadata\": {\n    \"total_size\": \(totalSize)\n  },\n  \"weight_map\": {".utf8)
        for (i, entry) in entries.enumerated() {
            out += Array((i == 0 ? "\n    " : ",\n    ").utf8)
            Safetensors.appendJSONString(entry.name, to: &out)
            out += Array(": ".utf8)
            Safetensors.appendJSONString(entry.file, to: &out)
        }
        out += Array((entries.isEmpty ? "}\n}\n" : "\n  }\n}\n").utf8)
        return String(decoding: out, as: UTF8.self)
    }

    /// `--max-shard-size` as save_pretrained reads it: bytes ("2000000"), or a number with a unit,
    /// case-insensitive: KB, MB, GB, TB (powers of 1000, huggingface_hub's `parse_size_to_int`;
    /// "1.5GB" allowed) or KiB, MiB, GiB, TiB (powers of 1024, transformers'
    /// `convert_file_size_to_int`). Nil when not a positive size that fits in 63 bits.
    public static func parseSize(_ text: String) -> Int? {
        let trimmed = text.trimmedSpaces
        guard trimmed.utf8.allSatisfy({ $0 < 0x80 }) else { return nil }
        let units: [(String, Int)] = [("KIB", 1 << 10), ("MIB", 1 << 20), ("GIB", 1 << 30), ("TIB", 1 << 40),
                                      ("KB", 1_000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("TB", 1_000_000_000_000)]
        var number = trimmed
        var scale = 1
        if let (unit, s) = units.first(where: { trimmed.uppercased().hasSuffix($0.0) }) {
            number = String(trimmed.dropLast(unit.count)).trimmedSpaces
            scale = s
        }
        let parts = number.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        func isDigits(_ s: Substring) -> Bool { !s.isEmpty && s.count <= 18 && s.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }
        guard let whole = parts.first, isDigits(whole), let w = Int(whole), var bytes = Checked.product(w, scale) else { return nil }
        if parts.count == 2 {
            // A fraction needs a unit (bytes are whole); truncated, as int(value * unit) does.
            guard scale > 1, isDigits(parts[1]), parts[1].count <= 9 else { return nil }
            var fraction = 0, denominator = 1
            for digit in parts[1].utf8 {
                fraction = fraction * 10 + Int(digit - 0x30)
                denominator *= 10
            }
            guard let scaled = Checked.product(fraction, scale), let sum = Checked.sum(bytes, scaled / denominator) else { return nil }
            bytes = sum
        }
        return bytes > 0 ? bytes : nil
    }
}

private extension String {
    var trimmedSpaces: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
