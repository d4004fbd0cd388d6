"""Mini DINOv2 backbones for the key-layout fixtures (hub / HF / timm / training checkpoints).

They have the same structure as the tiny models in models.py (LayerScale, biases, registers,
SwiGLU) but width 16 and a 3x3 or 2x2 position grid, so that one model in every layout and a
training checkpoint with student and teacher fit the fixture budget: a tiny model is ~360 KB per
copy, almost all of it the 37x37 position table and the patch embedding, a mini model ~65 KB.
Weights use the same seeded recipe (models.randomize_).
"""
from collections import OrderedDict

import torch

from .models import official_backbone, randomize_

MINI = {
    "mini-plain": dict(embed_dim=16, depth=2, num_heads=2, img_size=42, ffn_layer="mlp", registers=0),
    "mini-reg": dict(embed_dim=16, depth=2, num_heads=2, img_size=42, ffn_layer="mlp", registers=4),
    "mini-swiglu": dict(embed_dim=16, depth=2, num_heads=2, img_size=28, ffn_layer="swiglufused", registers=0),
}


def mini_state_dict(name: str, seed: int = 0) -> "OrderedDict[str, torch.Tensor]":
    """Hub-layout state dict in the official registration order (register_tokens after pos_embed)."""
    cfg = MINI[name]
    model = official_backbone(**cfg)
    sd = OrderedDict()
    for k, v in model.state_dict().items():
        sd[k] = v.detach().clone()
        if k == "pos_embed" and cfg["registers"]:
            sd["register_tokens"] = torch.zeros(1, cfg["registers"], cfg["embed_dim"])
    randomize_(sd, seed)
    return sd
