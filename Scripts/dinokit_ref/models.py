"""Tiny DINOv2 backbones with seeded, non-trivial weights, built with the official code.

The official PyPI snapshot (dinov2 0.0.1.dev2) has no register tokens; register models are made
by adding a `register_tokens` parameter to the hub-layout state dict (the name and shape the hub
models use), and their reference outputs come from transformers' Dinov2WithRegistersModel, whose
interpolation equals the official register models (size, antialias).

Every parameter is re-drawn from a seeded normal distribution so that no bias is zero, no LayerScale
is 1 and the mask token is not 0: a port that ignores any of them fails the goldens.
"""
import math
from collections import OrderedDict

import torch

# name -> constructor settings. num_heads is not recoverable from the weights of a non-hub width,
# so golden manifests and DinoKit metadata carry it for these models.
TINY = {
    # plain GELU MLP, 37x37 position grid as the hub models (518 = native size), offset 0.1
    "tiny-plain": dict(embed_dim=32, depth=2, num_heads=2, img_size=518, ffn_layer="mlp", registers=0),
    # 4 register tokens, 37x37 grid, antialiased size-based interpolation (register semantics)
    "tiny-reg": dict(embed_dim=32, depth=2, num_heads=2, img_size=518, ffn_layer="mlp", registers=4),
    # SwiGLU FFN as ViT-g, 16x16 grid (a 224-trained position table)
    "tiny-swiglu": dict(embed_dim=32, depth=2, num_heads=2, img_size=224, ffn_layer="swiglufused", registers=0),
}


def official_backbone(embed_dim, depth, num_heads, img_size=518, ffn_layer="mlp", block_chunks=0, **_):
    """The official DinoVisionTransformer with the hub settings (patch 14, LayerScale, eps 1e-6)."""
    from dinov2.models.vision_transformer import DinoVisionTransformer

    return DinoVisionTransformer(
        img_size=img_size, patch_size=14, embed_dim=embed_dim, depth=depth, num_heads=num_heads,
        mlp_ratio=4, init_values=1.0, ffn_layer=ffn_layer, block_chunks=block_chunks,
    ).eval()


def randomize_(state: "OrderedDict[str, torch.Tensor]", seed: int) -> None:
    """Seeded weights that keep activations in a sane range through a few blocks."""
    g = torch.Generator().manual_seed(seed)
    for name, t in state.items():
        if t.dtype != torch.float32:
            continue
        if name.endswith(("norm1.weight", "norm2.weight", "norm.weight")):
            v = 1.0 + 0.1 * torch.randn(t.shape, generator=g)
        elif ".gamma" in name:
            v = 0.5 + 0.3 * torch.rand(t.shape, generator=g)
        elif name.endswith(".weight") and t.dim() >= 2:
            fan_in = t[0].numel()
            v = torch.randn(t.shape, generator=g) / math.sqrt(fan_in)
        else:  # biases, tokens, position table
            v = 0.1 * torch.randn(t.shape, generator=g)
        t.copy_(v)


def tiny_state_dict(name: str, seed: int = 0) -> "OrderedDict[str, torch.Tensor]":
    """Hub-layout state dict of a tiny model, in the order the official module registers it
    (register_tokens after pos_embed, as the hub models have it)."""
    cfg = TINY[name]
    model = official_backbone(**cfg)
    sd = OrderedDict((k, v.detach().clone()) for k, v in model.state_dict().items())
    if cfg["registers"]:
        d = cfg["embed_dim"]
        out = OrderedDict()
        for k, v in sd.items():
            out[k] = v
            if k == "pos_embed":
                out["register_tokens"] = torch.zeros(1, cfg["registers"], d)
        sd = out
    randomize_(sd, seed)
    return sd


def tiny_official_model(name: str, seed: int = 0):
    """The official module loaded with the tiny weights (plain and SwiGLU models only)."""
    cfg = TINY[name]
    assert cfg["registers"] == 0, "the official PyPI snapshot has no register tokens; use transformers"
    model = official_backbone(**cfg)
    model.load_state_dict(tiny_state_dict(name, seed), strict=True)
    return model
