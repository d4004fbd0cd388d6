"""DINOv3 weights in the files transformers and timm themselves write and read, checked by running them.

Shared by Scripts/fixtures/layouts_v3.py (which writes the DINOv3 layout fixtures) and
Scripts/interop-check (which loads what `dinokit convert` writes). The name mappings are
layout_v3's; here are only the libraries' own converters and loaders:
- timm_converted: timm's eva.checkpoint_filter_fn on a copy of the hub weights (what timm makes of
  an official .pth), each tensor its own storage so safetensors can save it;
- check_timm_file: timm's Eva loads a safetensors file strictly, tensors equal timm's conversion;
- load_hf_folder: DINOv3ViTModel.from_pretrained, with every loading problem collected;
- tokens_*: all normalised tokens [cls, storage, patches] of each implementation, to compare;
- implied_hub: what DinoKit reads from a library-written HF folder or timm file (no metadata);
- differences: where two state dicts differ, names, order and bits.
"""
import os
from collections import OrderedDict

import torch

from . import layout_v3 as L
from .interop_hf import check_timm_load


def timm_converted(hub_sd, model) -> "OrderedDict[str, torch.Tensor]":
    """timm's own converter applied to a copy of the hub state dict. It splits qkv.bias with
    chunk(3) (views of one storage); each result is cloned so safetensors can save it."""
    from timm.models.eva import checkpoint_filter_fn

    sd = OrderedDict((k, v.clone()) for k, v in hub_sd.items())
    return OrderedDict((k, v.clone().contiguous()) for k, v in checkpoint_filter_fn(sd, model).items())


def check_timm_file(path: str, hub_sd, num_heads: int, label: str = ""):
    """timm's Eva loads the safetensors file at `path` strictly, and every tensor equals what timm's
    converter makes of the hub weights, bit for bit. Returns the loaded model."""
    from safetensors.torch import load_file

    model = L.timm_model(L.architecture(hub_sd, num_heads))
    check_timm_load(model, load_file(path), timm_converted(hub_sd, model), label or path)
    return model.eval()


def load_hf_folder(folder: str):
    """DINOv3ViTModel.from_pretrained(folder) and the loading problems transformers reports
    (missing, unexpected, mismatched keys, error messages), as a list of strings."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import DINOv3ViTModel

    model, info = DINOv3ViTModel.from_pretrained(folder, output_loading_info=True)
    problems = [f"{k}: {sorted(map(str, v))}" for k, v in info.items() if v]
    return model.eval(), problems


def seeded_images(seed: int, height: int, width: int, batch: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, height, width, generator=g)


@torch.no_grad()
def tokens_official(model, x) -> torch.Tensor:
    f = model.forward_features(x)
    return torch.cat([f["x_norm_clstoken"][:, None], f["x_storage_tokens"], f["x_norm_patchtokens"]], dim=1)


@torch.no_grad()
def tokens_hf(model, x) -> torch.Tensor:
    return model(pixel_values=x).last_hidden_state


@torch.no_grad()
def tokens_timm(model, x) -> torch.Tensor:
    """Eva.forward_features: every token after the final norm (no fc_norm in the DINOv3 entries)."""
    return model.forward_features(x)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, f"shapes {tuple(a.shape)} and {tuple(b.shape)}"
    return float((a - b).abs().max())


def implied_hub(hub_sd, keep_mask_token: bool) -> "OrderedDict[str, torch.Tensor]":
    """What DinoKit reads from an HF folder or timm file that lacks its metadata: the hub weights
    with each key bias third +0.0 (the official mask zeroes it anyway), no rope_embed.periods
    (recomputed from base 100), and no mask_token unless the layout holds one (HF does, timm not)."""
    out = OrderedDict()
    for k, v in hub_sd.items():
        if k == "rope_embed.periods" or (k == "mask_token" and not keep_mask_token):
            continue
        if k.endswith("attn.qkv.bias"):
            d = v.shape[0] // 3
            v = torch.cat([v[:d], torch.zeros_like(v[d:2 * d]), v[2 * d:]])
        out[k] = v
    return out


def differences(got, want) -> list:
    """Where two state dicts differ (names, order, dtype, shape, bits), as short strings; [] = identical."""
    problems = []
    if list(got) != list(want):
        extra, missing = sorted(set(got) - set(want)), sorted(set(want) - set(got))
        problems.append(f"names differ: extra {extra[:6]}, missing {missing[:6]}" if extra or missing else "order differs")
    for k, w in want.items():
        g = got.get(k)
        if g is None:
            continue
        if g.dtype != w.dtype or g.shape != w.shape:
            problems.append(f"{k}: {g.dtype}{tuple(g.shape)} vs {w.dtype}{tuple(w.shape)}")
        elif not torch.equal(g, w):
            problems.append(f"{k}: values differ (max {float((g.float() - w.float()).abs().max()):.3g})")
    return problems
