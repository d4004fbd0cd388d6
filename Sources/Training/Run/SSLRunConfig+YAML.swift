import CYaml
import Foundation
import TensorStore
import Yams

extension SSLRunConfig {
    /// Longest config file read (JSON or YAML): a run config is a few dozen lines; a larger file
    /// is a mistake, not a config to parse into memory.
    public static let maximumFileBytes = 1 << 20

    /// A YAML config file (`--config run.yaml`): the same keys and rules as the JSON form. The
    /// YAML is turned into the JSON path's plain values (`RunConfigYAML`) and handed to it, so both
    /// forms share one set of checks (unknown keys, types, defaults).
    public static func load(yaml text: String, file: String, over base: SSLRunConfig = SSLRunConfig()) throws -> SSLRunConfig {
        let mapping = try RunConfigYAML.settings(text, file: file)
        guard JSONSerialization.isValidJSONObject(mapping),
              let data = try? JSONSerialization.data(withJSONObject: mapping) else {
            throw SSLRunError.config(file: file, message: "holds values that are not numbers, strings, booleans or lists")
        }
        return try load(json: data, file: file, over: base)
    }

    /// A config file by its extension: `.yaml`/`.yml` as YAML, anything else as JSON.
    public static func load(file path: String, over base: SSLRunConfig = SSLRunConfig()) throws -> SSLRunConfig {
        let data: Data
        do { data = Data(try RegularFile.read(path, limit: maximumFileBytes)) } catch {
            throw SSLRunError.config(file: path, message: "cannot read the file (\(error))")
        }
        let lower = path.lowercased()
        if lower.hasSuffix(".yaml") || lower.hasSuffix(".yml") {
            guard let text = String(data: data, encoding: .utf8) else {
                throw SSLRunError.config(file: path, message: "not UTF-8 text")
            }
            return try load(yaml: text, file: path, over: base)
        }
        return try load(json: data, file: path, over: base)
    }
}

/// Untrusted YAML to the values `JSONSerialization` gives for the same settings (`[String: Any]`
/// of `NSNumber`, `String`, `[Any]`, `NSNull`), without Yams' Constructor, which traps on a
/// mapping key that is not a string (`{[]}`: a force unwrap in `String.construct`) and expands
/// aliases into copies (a "billion laughs" document of 400 bytes names 10^9 values).
///
/// Three steps:
/// 1. libyaml's event stream is read once to refuse anchors and aliases, more than
///    `maximumNodes` nodes and nesting deeper than `maximumDepth`. This must come before Yams
///    composes: aliases are shared references in Yams' node tree, but its composer hashes every
///    mapping key to find duplicates, and hashing an alias to a bomb visits every copy. Yams'
///    `Parser` does not expose its events, so this reads them from the libyaml it wraps.
/// 2. `Yams.compose` builds the node tree (now no larger than the event count) and resolves
///    scalar tags with YAML 1.1's core schema, as `Yams.load` did.
/// 3. The tree is converted here: scalars by their resolved tag, mapping keys only as scalars.
enum RunConfigYAML {
    /// A run config has about fifty settings, a few of them two-element lists.
    static let maximumNodes = 10_000
    /// A mapping of settings, some holding a list: depth 2.
    static let maximumDepth = 16

    static func settings(_ text: String, file: String) throws -> [String: Any] {
        func fail(_ m: String) -> SSLRunError { .config(file: file, message: m) }
        guard text.utf8.count <= SSLRunConfig.maximumFileBytes else {
            throw fail("\(text.utf8.count) bytes exceed the \(SSLRunConfig.maximumFileBytes)-byte limit for a config")
        }
        try checkEvents(text, file: file)
        let root: Node?
        do {
            // UTF-8 named here: Yams' default reads YAMS_DEFAULT_ENCODING from the environment on
            // every parse (a variable could switch it to UTF-16; the text is UTF-8 already).
            root = try Yams.compose(yaml: text, .default, .default, .utf8)
        } catch {
            throw fail("not valid YAML (\(oneLine(error)))")
        }
        guard let root, case .mapping = root else { throw fail("not a YAML mapping of settings") }
        guard let settings = try value(of: root, file: file) as? [String: Any] else {
            throw fail("not a YAML mapping of settings")
        }
        return settings
    }

    /// Step 1 (see the type's comment). A syntax error is left for `compose` to report.
    private static func checkEvents(_ text: String, file: String) throws {
        func fail(_ mark: yaml_mark_t, _ m: String) -> SSLRunError {
            .config(file: file, message: "line \(mark.line + 1), column \(mark.column + 1): \(m)")
        }
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            throw SSLRunError.config(file: file, message: "libyaml could not start a parser")
        }
        defer { yaml_parser_delete(&parser) }
        var bytes = Array(text.utf8)
        try bytes.withUnsafeMutableBufferPointer { buffer in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var nodes = 0, depth = 0
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else { return }
                defer { yaml_event_delete(&event) }
                let anchor: UnsafeMutablePointer<yaml_char_t>?
                switch event.type {
                case YAML_STREAM_END_EVENT:
                    return
                case YAML_ALIAS_EVENT:
                    throw fail(event.start_mark, "YAML aliases (*name) are not accepted in a run config; it needs none: write the value out")
                case YAML_SCALAR_EVENT:
                    anchor = event.data.scalar.anchor
                case YAML_SEQUENCE_START_EVENT:
                    anchor = event.data.sequence_start.anchor
                    depth += 1
                case YAML_MAPPING_START_EVENT:
                    anchor = event.data.mapping_start.anchor
                    depth += 1
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    depth -= 1
                    continue
                default:
                    continue
                }
                if anchor != nil {
                    throw fail(event.start_mark, "YAML anchors (&name) are not accepted in a run config; it needs none: write the value out")
                }
                nodes += 1
                guard nodes <= maximumNodes else {
                    throw fail(event.start_mark, "more than \(maximumNodes) values; a run config has about fifty settings")
                }
                guard depth <= maximumDepth else {
                    throw fail(event.start_mark, "lists or mappings nested deeper than \(maximumDepth) levels; settings are numbers, strings, booleans or short lists")
                }
            }
        }
    }

    /// Step 3. Recursion is bounded by `maximumDepth`, the work by `maximumNodes` (step 1).
    private static func value(of node: Node, file: String) throws -> Any {
        func fail(_ node: Node, _ m: String) -> SSLRunError {
            let place = node.mark.map { "line \($0.line), column \($0.column): " } ?? ""
            return .config(file: file, message: place + m)
        }
        switch node {
        case let .scalar(scalar):
            // `node.tag` is the resolved tag (`scalar.tag` may still be the implicit one).
            let tag = Tag.Name(rawValue: node.tag.rawValue)
            switch tag {
            case .str: return scalar.string
            case .null: return NSNull()
            case .bool:
                if let b = Bool.construct(from: scalar) { return b }
            case .int:
                if let i = Int.construct(from: scalar) { return i }
                if let u = UInt64.construct(from: scalar) { return u }
            case .float:
                if let d = Double.construct(from: scalar) { return d }
            default:
                break
            }
            throw fail(node, "'\(scalar.string.escapedForMessage)' (\(tag.rawValue.escapedForMessage)) is not a number, string, boolean or null")
        case let .sequence(sequence):
            return try sequence.map { try value(of: $0, file: file) }
        case let .mapping(mapping):
            var out: [String: Any] = [:]
            for (key, item) in mapping {
                guard case let .scalar(name) = key else {
                    throw fail(key, "a mapping key is a list or mapping; setting names are plain words")
                }
                guard out.updateValue(try value(of: item, file: file), forKey: name.string) == nil else {
                    throw fail(key, "setting '\(name.string.escapedForMessage)' is given twice")
                }
            }
            return out
        case .alias:
            // Step 1 refused every alias; compose never returns this case for parsed text.
            throw fail(node, "YAML aliases (*name) are not accepted in a run config")
        }
    }

    /// Yams' error descriptions quote the offending line under a caret; the first line says it all.
    private static func oneLine(_ error: Error) -> String {
        String(describing: error).split(separator: "\n").first.map(String.init)?.escapedForMessage ?? "unknown error"
    }
}
