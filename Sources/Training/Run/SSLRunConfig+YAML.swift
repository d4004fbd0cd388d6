import Foundation
import TensorStore
import Yams

extension SSLRunConfig {
    /// A YAML config file (`--config run.yaml`): the same keys and rules as the JSON form. The
    /// YAML is parsed by Yams into plain values and handed to the JSON path, so both forms share
    /// one set of checks (unknown keys, types, defaults).
    public static func load(yaml text: String, file: String, over base: SSLRunConfig = SSLRunConfig()) throws -> SSLRunConfig {
        let value: Any?
        do {
            value = try Yams.load(yaml: text)
        } catch {
            throw SSLRunError.config(file: file, message: "not valid YAML (\(error))")
        }
        guard let mapping = value as? [String: Any] else {
            throw SSLRunError.config(file: file, message: "not a YAML mapping of settings")
        }
        guard JSONSerialization.isValidJSONObject(mapping),
              let data = try? JSONSerialization.data(withJSONObject: mapping) else {
            throw SSLRunError.config(file: file, message: "holds values that are not numbers, strings, booleans or lists")
        }
        return try load(json: data, file: file, over: base)
    }

    /// A config file by its extension: `.yaml`/`.yml` as YAML, anything else as JSON.
    public static func load(file path: String, over base: SSLRunConfig = SSLRunConfig()) throws -> SSLRunConfig {
        let data: Data
        do { data = Data(try RegularFile.read(path)) } catch {
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
