/// The naming schemes DINOv2 weights are published in (dinov2-spec.md §1.11–1.13).
public enum Layout: String, Sendable, CaseIterable {
    /// torch-hub `state_dict` names (`blocks.3.attn.qkv.weight`): DinoKit's canonical names.
    case hub
    /// HF transformers `Dinov2Model` / `Dinov2WithRegistersModel` (q/k/v split, `encoder.layer.i`).
    case hf
    /// timm `vit_*_patch14_dinov2` (no mask token; register models fold `pos_embed[:, 0]` into `cls_token`),
    /// and timm's DINOv3 `Eva` (`vit_*_patch16_dinov3`: `reg_token`, `gamma_1`, `q_bias`/`v_bias`).
    case timm
    /// DINOv2 training checkpoints (`teacher.`/`student.` + `backbone.`/`dino_head.`, chunked blocks),
    /// and DINOv3's `teacher_checkpoint.pth` (`teacher.` + `backbone.`/`dino_head.`/`ibot_head.`).
    case training
    case unknown
}

/// Which backbone of a training checkpoint to take. DINOv2 evaluates the teacher.
public enum TrainingBranch: String, Sendable {
    case teacher, student
}
