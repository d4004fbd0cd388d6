import OrderedCollections
import TensorStore

/// Hub tensors a layout has no slot for, carried in the store's metadata as `dinokit.hub.<hub
/// name>` = `MetadataTensor` text. safetensors keeps metadata in `__metadata__`, which transformers
/// and timm ignore, so the file still loads strictly there while hub → layout → hub stays
/// bit-identical. A part of a tensor is carried under the tensor's name and a suffix
/// (`pos_embed.row0`, `blocks.<i>.attn.qkv.bias.k`).
///
/// Rendering carries; canonicalizing restores and then drops every carried entry, so a hub store
/// never holds a stale copy of a value it has as a tensor.
enum CarriedTensors {
    static let prefix = "dinokit.hub."

    /// DINOv3 hub tensors neither transformers nor timm has a slot for: the RoPE periods (both
    /// recompute them) and the training-only `local_cls_norm` (both drop it; never used in eval).
    static let dinov3Unslotted = ["rope_embed.periods", "local_cls_norm.weight", "local_cls_norm.bias"]

    static func key(_ hubName: String) -> String { prefix + hubName }

    static func carry(_ t: Tensor, as hubName: String, in metadata: inout OrderedDictionary<String, String>) {
        metadata[key(hubName)] = MetadataTensor.encode(t)
    }

    /// The tensor carried as `hubName`, nil when none is; throws when its text does not decode.
    static func carried(_ hubName: String, in metadata: OrderedDictionary<String, String>) throws -> Tensor? {
        guard let text = metadata[key(hubName)] else { return nil }
        return try MetadataTensor.decode(text, key: key(hubName))
    }

    /// `metadata` without any carried entry.
    static func removingAll(from metadata: OrderedDictionary<String, String>) -> OrderedDictionary<String, String> {
        metadata.filter { !$0.key.hasPrefix(prefix) }
    }
}
