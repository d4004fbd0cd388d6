import TensorStore

/// Recovers DINOv2 weight names from an ONNX file written by torch.onnx. Both of its exporters
/// keep most parameters under their module names (behind a wrapper prefix such as `m.`), but
/// constant folding replaces some: every Linear weight becomes an anonymous `[in, out]` MatMul
/// operand (`onnx::MatMul_345`, `val_38`), and slices of the position table or a cls token
/// expanded to batch 1 appear as anonymous constants. The graph still says what they were:
/// the MatMul's output is added to the named `<module>.bias`, the position grid is reshaped
/// for the resize and its cls row concatenated back. Weights folded beyond that (or never in
/// the graph, like the mask token) cannot be recovered and are simply absent.
enum TorchONNXNames {
    /// Hub (official / timm) and HF names of the patch projection: where the prefix ends.
    static let anchors: [(suffix: String, hf: Bool)] = [
        ("embeddings.patch_embeddings.projection.weight", true),
        ("patch_embed.proj.weight", false),
    ]

    static func recover(_ model: ONNXModelFile) throws -> TensorStore? {
        let inits = model.initializers
        guard let (anchorName, isHF) = anchors.lazy.compactMap({ a in
            inits.names.first { $0.hasSuffix(a.suffix) }.map { ($0, a.hf) }
        }).first else { return nil }
        let suffix = isHF ? anchors[0].suffix : anchors[1].suffix
        let prefix = String(anchorName.dropLast(suffix.count))
        guard prefix.isEmpty || prefix.hasSuffix(".") else { return nil }

        let topLevel: Set<String> = ["cls_token", "pos_embed", "register_tokens", "mask_token", "reg_token"]
        func isNamed(_ name: String) -> Bool {
            guard name.hasPrefix(prefix) else { return false }
            let rest = name.dropFirst(prefix.count)
            if !prefix.isEmpty { return true }
            return !rest.contains(":") && (rest.contains(".") || topLevel.contains(String(rest)))
        }

        var out = TensorStore()
        var anonymous: [(String, Tensor)] = []
        for (name, t) in inits.tensors {
            if isNamed(name) { try out.insert(t, named: String(name.dropFirst(prefix.count))) } else { anonymous.append((name, t)) }
        }
        var used = Set<String>()

        // Nodes by the values they read, and what produced each value.
        var consumers: [String: [ONNXModelFile.Node]] = [:]
        for n in model.nodes { for i in n.inputs where !i.isEmpty { consumers[i, default: []].append(n) } }

        // Linear weights: MatMul(x, W[in, out]) followed by Add(_, <module>.bias[out]). A value has
        // one producer in a valid graph; a hostile one can give N MatMuls the same output read by
        // M Adds, and visiting that output once per MatMul was N × M work.
        var visited = Set<String>()
        for (name, t) in anonymous where t.shape.rank == 2 {
            for mm in consumers[name] ?? [] where mm.opType == "MatMul" && mm.inputs.count == 2 && mm.inputs[1] == name {
                guard let y = mm.outputs.first, visited.insert(y).inserted else { continue }
                for add in consumers[y] ?? [] where add.opType == "Add" {
                    guard let bias = add.inputs.first(where: { $0 != y }), isNamed(bias), bias.hasSuffix(".bias"),
                          let b = inits[bias], b.shape.dims == [t.shape[1]] else { continue }
                    let weightName = String(bias.dropFirst(prefix.count).dropLast(".bias".count)) + ".weight"
                    guard out[weightName] == nil, !used.contains(name) else { continue }
                    // The transpose as a strided view: writers materialise it in C order.
                    let w = try Tensor(storage: t.storage, dtype: t.dtype, shape: [t.shape[1], t.shape[0]],
                                       strides: [t.strides[1], t.strides[0]], offset: t.offset)
                    try out.insert(w, named: weightName)
                    used.insert(name)
                }
            }
        }

        // Position table folded into its cls row ([1, 1, D], concatenated) and grid ([1, M², D], reshaped).
        let posName = isHF ? "embeddings.position_embeddings" : "pos_embed"
        let clsName = isHF ? "embeddings.cls_token" : "cls_token"
        let d = inits[anchorName]?.shape.first ?? 0
        func feeds(_ name: String, _ op: String) -> Bool { (consumers[name] ?? []).contains { $0.opType == op } }
        if out[posName] == nil,
           let grid = anonymous.first(where: { !used.contains($0.0) && isGrid($0.1, d) && feeds($0.0, "Reshape") }),
           let row = anonymous.first(where: { !used.contains($0.0) && $0.1.shape.dims == [1, 1, d] && feeds($0.0, "Concat") }) {
            try out.insert(concatRows(row.1, grid.1), named: posName)
            used.insert(grid.0)
            used.insert(row.0)
        }
        if out[clsName] == nil,
           let cls = anonymous.first(where: { !used.contains($0.0) && $0.1.shape.dims == [1, 1, d] }) {
            try out.insert(cls.1, named: clsName)
            used.insert(cls.0)
        }
        guard KeyLayouts.detect(out) != .unknown else { return nil }
        out.metadata["dinokit.onnx_names"] = "recovered from a torch.onnx export (\(used.count) folded initializers mapped back)"
        return out
    }

    static func isGrid(_ t: Tensor, _ d: Int) -> Bool {
        guard t.shape.rank == 3, t.shape[0] == 1, t.shape[2] == d, t.shape[1] > 1 else { return false }
        let m = Int(Double(t.shape[1]).squareRoot().rounded())
        return m * m == t.shape[1]
    }

    /// [1, 1, D] ++ [1, N, D] along dim 1.
    static func concatRows(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        let storage = Storage(byteCount: a.byteCount + b.byteCount)
        a.withContiguousBytes { storage.mutableBytes.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        b.withContiguousBytes { (storage.mutableBytes.baseAddress! + a.byteCount).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        return try Tensor(storage: storage, dtype: a.dtype, shape: [1, 1 + b.shape[1], a.shape[2]])
    }
}
