import Foundation

/// One tensor's optimiser settings (dinov2/utils/param_groups.py `get_params_groups_with_decay`;
/// spec §4.3): lr = (last-layer lr if `isLastLayer` else lr) · `lrMultiplier`, weight decay =
/// wd · `wdMultiplier`.
public struct ParameterGroup: Sendable, Equatable, Hashable {
    public var lrMultiplier: Double
    public var wdMultiplier: Double
    public var isLastLayer: Bool
}

public enum ParamGroups {
    /// Settings for every tensor of a student module, in layout order. `depth` is the backbone's
    /// block count for the backbone and 0 for a head (which the official code treats as one
    /// layer: multiplier 1).
    ///
    /// Layer ids follow `get_vit_lr_decay_rate` with names relative to the module: 0 for names
    /// containing `pos_embed`, `patch_embed`, `mask_token`, `cls_token`, `register_tokens` or
    /// DINOv3's `storage_tokens` (dinov3/train/param_groups.py lists it with them);
    /// i + 1 for `blocks.i.…`; depth + 1 otherwise (the final `norm`). `register_tokens` is in
    /// layer 0 as upstream HEAD has it (`ad5a262`); the PyPI snapshot, which predates registers,
    /// would give it the final norm's multiplier. Multiplier decay^(depth + 1 − layer id), times `patchEmbedLRMultiplier`
    /// for `patch_embed`. No weight decay for names ending in `.bias` or containing `norm` or
    /// `gamma`; the tokens and `last_layer.weight_g` are decayed.
    public static func groups(for layout: ParameterLayout, depth: Int, layerwiseDecay: Double,
                              patchEmbedLRMultiplier: Double) -> [ParameterGroup] {
        layout.slots.map { slot in
            let name = slot.name
            var layerID = depth + 1
            if depth > 0 {
                if ["pos_embed", "patch_embed", "mask_token", "cls_token", "register_tokens", "storage_tokens"].contains(where: { name.contains($0) }) {
                    layerID = 0
                } else if name.contains("blocks."), !name.contains("residual.") {
                    let parts = name[name.range(of: "blocks.")!.lowerBound...].split(separator: ".")
                    if parts.count > 1, let i = Int(parts[1]) { layerID = i + 1 }
                }
            }
            var lr = Foundation.pow(layerwiseDecay, Double(depth + 1 - layerID))
            if name.contains("patch_embed") { lr *= patchEmbedLRMultiplier }
            let noDecay = name.hasSuffix(".bias") || name.contains("norm") || name.contains("gamma")
            return ParameterGroup(lrMultiplier: lr, wdMultiplier: noDecay ? 0 : 1, isLastLayer: name.contains("last_layer"))
        }
    }
}
