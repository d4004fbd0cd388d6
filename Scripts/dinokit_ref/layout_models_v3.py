"""Mini DINOv3 backbones for the key-layout fixtures (hub / HF / timm / training checkpoint).

Width 16, depth 2, 2 heads (head dim 8: RoPE periods 1 and 10), 4 storage tokens, masked key bias
with a non-zero key third (goldens_v3.seeded_state_dict draws it: only bias_mask keeps it out).
Patch size 8, not DINOv3's 16: a DINOv3 model has no position table, so the patch embedding
(D x 3 x p x p) is most of a mini model; at p = 16 it alone is 48 KB per copy and the eight copies
would not fit the 600 KB the layout fixtures may take. Names and layouts do not depend on p.
"""
from collections import OrderedDict

import torch

from . import goldens_v3 as G
from . import layout_v3 as L

_COMMON = dict(embed_dim=16, depth=2, num_heads=2, patch_size=8, img_size=32)
MINI_V3 = {
    # GELU MLP x4 (hidden 64)
    "mini-v3-plain": L.V3Spec("mini-v3-plain", ffn_layer="mlp", ffn_ratio=4.0, **_COMMON),
    # SwiGLU, align 8: int(16 * 4) = 64, int(64 * 2/3) = 42 -> 48
    "mini-v3-swiglu": L.V3Spec("mini-v3-swiglu", ffn_layer="swiglu", ffn_ratio=4.0, **_COMMON),
    # untie_cls_and_patch_norms: cls_norm for cls + storage tokens (neither HF nor timm has it)
    "mini-v3-untied": L.V3Spec("mini-v3-untied", ffn_layer="mlp", ffn_ratio=4.0, untie_cls_and_patch_norms=True, **_COMMON),
}
BUFFERS = ("rope_embed.periods", ".bias_mask")


def mini_v3_state_dict(name: str) -> "OrderedDict[str, torch.Tensor]":
    """Seeded hub-layout weights in the official order (goldens_v3's recipe, seeded by name)."""
    return G.seeded_state_dict(MINI_V3[name])


def official_mini(name: str, official_dir: str, sd=None):
    """The official DinoVisionTransformer for `name`, holding `sd` (default: the seeded weights).
    Its own init_weights runs first, and the two buffers it fills (the base-100 periods, the
    (1, 0, 1) bias_mask) must equal the seeded ones: the weights are what the official code holds."""
    spec = MINI_V3[name]
    sd = mini_v3_state_dict(name) if sd is None else sd
    model = L.official_model(spec, None, official_dir)
    torch.manual_seed(0)
    model.init_weights()
    for k, v in model.state_dict().items():
        if k.endswith(BUFFERS):
            assert torch.equal(v, sd[k]), f"{name}: the official init gives another {k}"
    model.load_state_dict(sd, strict=True)
    return model.eval()
