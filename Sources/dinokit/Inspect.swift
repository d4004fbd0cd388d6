import ArgumentParser
import Formats
import Kernels
import TensorStore

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List a checkpoint's tensors with its detected format, layout and DINOv2 variant.")

    @Argument(help: "A .pth (zip or legacy), .safetensors, HF folder, .npz or .npy.")
    var path: String

    @OptionGroup var jsonOption: JSONOption

    struct Report: Encodable {
        struct Entry: Encodable {
            var name: String
            var dtype: String
            var shape: [Int]
            var bytes: Int
        }
        var format: String
        var layout: String
        var variant: String?
        /// `dinov2` or `dinov3` when the tensors are a backbone.
        var family: String?
        var architecture: String?
        var parameters: Int
        var tensors: [Entry]
        var metadata: [String: String]
        /// Time to open, parse and classify the file, in this process.
        var seconds: Double

        enum CodingKeys: String, CodingKey { case format, layout, variant, family, architecture, parameters, tensors, metadata, seconds }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(format, forKey: .format)
            try c.encode(layout, forKey: .layout)
            try c.encode(variant, forKey: .variant) // null when unknown, as the schema says
            try c.encode(family, forKey: .family)
            try c.encodeIfPresent(architecture, forKey: .architecture)
            try c.encode(parameters, forKey: .parameters)
            try c.encode(tensors, forKey: .tensors)
            try c.encode(metadata, forKey: .metadata)
            try c.encode(seconds, forKey: .seconds)
        }
    }

    func run() throws {
        let start = monotonicSeconds()
        let (format, store) = try Checkpoint.read(path: path)
        let layout = KeyLayouts.detect(store)
        // Variant and shape come from the canonical (hub-named) backbone when there is one.
        let architecture = layout == .unknown ? nil
            : (try? KeyLayouts.canonicalize(store, detected: layout)).flatMap { try? BackboneArchitecture.detect(hubStore: $0.store) }
        let report = Report(
            format: format.rawValue, layout: layout.rawValue, variant: architecture?.variant,
            family: architecture?.family.rawValue, architecture: architecture?.description, parameters: store.parameterCount,
            tensors: store.tensors.map { Report.Entry(name: $0.key, dtype: $0.value.dtype.rawValue, shape: $0.value.shape.dims, bytes: $0.value.byteCount) },
            metadata: Dictionary(uniqueKeysWithValues: store.metadata.map { ($0.key, $0.value) }),
            seconds: monotonicSeconds() - start)
        if jsonOption.json {
            try printJSON(report)
            return
        }
        print("\(path)")
        print("format: \(report.format)   layout: \(report.layout)   variant: \(report.variant ?? "-")")
        if let a = architecture {
            print("architecture: \(a)")
            // Widths that are not a multiple of 64 do not say their heads; tell how to give them.
            if a.numHeads == nil {
                print("heads: unknown for width \(a.embedDim) (not a multiple of 64); pass --num-heads N to the commands that load it, or record it with dinokit convert --num-heads N")
            }
        }
        if format == .onnx, let model = try? ONNXModelReader.readModel(path: path) {
            print("graph:")
            for (k, v) in model.graphSummary { print("  \(k): \(v)") }
        }
        print()
        // Names and metadata come from the file: escaped, so a hostile name cannot break the table.
        let rows = report.tensors.map { [$0.name.escapedForMessage, $0.dtype, "\($0.shape)", grouped($0.bytes)] }
        print(renderTable(["name", "dtype", "shape", "bytes"], rows, rightAligned: [3]))
        print()
        print("\(store.count) tensors, \(grouped(store.parameterCount)) parameters, \(grouped(store.byteCount)) bytes (\(humanBytes(store.byteCount)))")
        if !store.metadata.isEmpty {
            print("metadata:")
            for (k, v) in store.metadata {
                print("  \(k.escapedForMessage) = \((v.count > 200 ? String(v.prefix(200)) + "…" : v).escapedForMessage)")
            }
        }
    }
}
