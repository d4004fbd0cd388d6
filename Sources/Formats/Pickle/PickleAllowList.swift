/// The globals a weights pickle may name: the same set `torch.load(weights_only=True)` accepts
/// (`torch/_weights_only_unpickler.py`, `_get_allowed_globals`). Everything else is refused by name
/// before anything is built. Nothing on this list is ever executed: the unpickler interprets the
/// few that matter for weights (`PickleInterpreter`) and keeps the rest as inert data.
/// Beyond torch's list: `builtins.bytes` and `builtins.frozenset`, pure data constructors CPython's
/// protocol 2 uses for `b""` and frozensets (interpreted as values, like `builtins.set`).
public enum PickleAllowList {
    /// Modules torch refuses even when a user allow-lists something from them.
    public static let blockedModules: Set<String> = ["sys", "os", "posix", "nt"]

    public static let rebuildFunctions: [String] = [
        "_rebuild_parameter", "_rebuild_parameter_with_state", "_rebuild_qtensor", "_rebuild_tensor",
        "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_sparse_tensor", "_rebuild_meta_tensor_no_storage",
        "_rebuild_nested_tensor", "_rebuild_wrapper_subclass", "_rebuild_device_tensor_from_numpy",
        "_rebuild_device_tensor_from_cpu_tensor",
    ]

    static let tensorClassPrefixes = ["Double", "Float", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool"]

    public static let allowed: Set<String> = {
        var s: Set<String> = [
            "collections.OrderedDict", "collections.Counter", "torch.nn.parameter.Parameter",
            "torch.serialization._get_layout", "torch.Size", "torch.Tensor", "torch.device",
            "_codecs.encode", "builtins.bytearray", "builtins.set", "builtins.complex",
            "builtins.bytes", "builtins.frozenset",
            "torch.storage.TypedStorage", "torch.storage.UntypedStorage",
            "torch._tensor._rebuild_from_type_v2",
            "torch.per_tensor_affine", "torch.per_tensor_symmetric", "torch.per_channel_affine",
            "torch.per_channel_symmetric", "torch.per_channel_affine_float_qparams",
        ]
        for f in rebuildFunctions { s.insert("torch._utils.\(f)") }
        for d in TorchDTypeNames.knownDTypes { s.insert("torch.\(d)") }
        for storage in TorchDTypeNames.storageClassDType.keys {
            s.insert("torch.\(storage)")
            if !storage.hasPrefix("Q") { s.insert("torch.cuda.\(storage)") }
        }
        for p in tensorClassPrefixes {
            s.insert("torch.\(p)Tensor")
            s.insert("torch.cuda.\(p)Tensor")
            if p != "Bool" {
                s.insert("torch.sparse.\(p)Tensor")
                s.insert("torch.cuda.sparse.\(p)Tensor")
            }
        }
        return s
    }()

    /// Python 2 and old torch module names, mapped as torch's `_read_global_instruction` and
    /// `load_module_mapping` do, so old checkpoints name the same globals.
    public static func canonical(module: String, name: String) -> (module: String, name: String) {
        switch module {
        case "__builtin__": return ("builtins", name)
        case "torch.tensor": return ("torch._tensor", name)
        default: return (module, name)
        }
    }

    public static func isAllowed(module: String, name: String) -> Bool {
        if isStateDictGlobal(module: module, name: name) { return true }
        if blockedModules.contains(module) { return false }
        return allowed.contains("\(module).\(name)")
    }

    /// The few globals every state dict names, answered without `allowed`: building that set on
    /// first use cost more than the rest of reading a small checkpoint's pickle. Each is in
    /// `allowed` (a test checks).
    static func isStateDictGlobal(module: String, name: String) -> Bool {
        switch module {
        case "collections": return name == "OrderedDict"
        case "torch._utils": return name == "_rebuild_tensor_v2" || name == "_rebuild_parameter"
        case "torch": return name.hasSuffix("Storage") && TorchDTypeNames.storageClassDType[name] != nil
        default: return false
        }
    }
}
