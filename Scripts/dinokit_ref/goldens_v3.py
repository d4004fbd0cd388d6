"""DINOv3 golden sets (`dinokit-golden/1`, `"family": "dinov3"`), made by the real PyTorch code.

Same format as the DINOv2 sets (Fixtures/golden/README.md): manifest.json, model.safetensors in the
official hub layout (layout_v3.hub_shapes: exactly the names, shapes and order of the official
DinoVisionTransformer.state_dict()), float32 .npy outputs. Which code is the truth:

- tied final norm (tiny-v3-plain, tiny-v3-swiglu, the --full sets): transformers' DINOv3ViTModel,
  loaded strictly through layout_v3.hub_to_hf (eager attention);
- untied cls norm (tiny-v3-untied): the official DinoVisionTransformer from a checkout of
  facebookresearch/dinov3 (`--official DIR` or DINOKIT_DINOV3_OFFICIAL; never vendored), because
  transformers has no cls_norm. Without the checkout, `--check` recomputes it with transformers'
  blocks and the two norms applied as the official forward_features does (HFReference with
  cls_norm), and says so.

Cross-checks against the official code and timm's Eva live in goldens_check.py.
"""
import math
import os
import zlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from . import goldens as G
from . import layout_v3 as L
from .synthetic import lcg_tensor

FAMILY = "dinov3"
PATCH = L.PATCH
OFFICIAL_ENV = "DINOKIT_DINOV3_OFFICIAL"

TINY = {
    # GELU MLP x4, 2 heads (head dim 16: 4 RoPE periods), mask_k_bias with a non-zero key bias third
    "tiny-v3-plain": L.V3Spec("tiny-v3-plain", 32, 2, 2, "mlp", 4.0),
    # SwiGLU (align_to 8), ffn_ratio 3.5: int(32 * 3.5) = 112, int(112 * 2/3) = 74 -> 80; 1 head (head dim 32)
    "tiny-v3-swiglu": L.V3Spec("tiny-v3-swiglu", 32, 2, 1, "swiglu", 3.5),
    # untie_cls_and_patch_norms: cls + storage tokens through cls_norm, patches through norm; 4 heads (head dim 8)
    "tiny-v3-untied": L.V3Spec("tiny-v3-untied", 32, 2, 4, "mlp", 4.0, untie_cls_and_patch_norms=True),
}

FULL = {
    "dinov3_vits16": L.V3Spec("dinov3_vits16", 384, 12, 6, "mlp", 4.0),
    "dinov3_vits16plus": L.V3Spec("dinov3_vits16plus", 384, 12, 6, "swiglu", 6.0),
    "dinov3_vitb16": L.V3Spec("dinov3_vitb16", 768, 12, 12, "mlp", 4.0),
}


def official_dir(explicit: str = "") -> str:
    """The checkout of facebookresearch/dinov3 to import `dinov3` from, or "" when there is none."""
    d = explicit or os.environ.get(OFFICIAL_ENV, "")
    if d and not os.path.isfile(os.path.join(d, "dinov3", "models", "vision_transformer.py")):
        raise SystemExit(f"{d}: no dinov3/models/vision_transformer.py (a checkout of facebookresearch/dinov3)")
    return d


# ---------------------------------------------------------------------------------------------
# Weights


def weight_seed(name: str) -> int:
    return zlib.crc32(f"{name}/weights".encode()) & 0xFFFFFFFF


def seeded_state_dict(spec: L.V3Spec, seed: int = -1) -> "OrderedDict[str, torch.Tensor]":
    """Hub-layout weights, every tensor drawn (nothing is an init value): norms 1 + 0.1 N, LayerScale
    gammas uniform in [0.5, 0.8), cls and mask tokens N(0, 1), matrices N / sqrt(fan_in), the qkv bias
    0.5 N (its key third too: only bias_mask keeps it out), other biases 0.1 N. Storage tokens are
    0.01 N: their variance (~1e-4) is close enough to the LayerNorm eps that block 0's norm1 tells
    1e-5 (DINOv3) from 1e-6 (DINOv2) well above the verifier's tolerance. The two buffers are what
    the official init gives: bias_mask (1, 0, 1) by thirds and the base-100 periods."""
    g = torch.Generator().manual_seed(weight_seed(spec.name) if seed < 0 else seed)
    sd = OrderedDict()
    for name, shape in L.hub_shapes(spec).items():
        if name == "rope_embed.periods":
            v = L.rope_periods(spec.head_dim)
        elif name.endswith(".bias_mask"):
            v = L.bias_mask(spec.embed_dim)
        elif name.endswith(("norm1.weight", "norm2.weight", "norm.weight")):  # norm.weight covers cls_norm
            v = 1.0 + 0.1 * torch.randn(shape, generator=g)
        elif name.endswith(".gamma"):
            v = 0.5 + 0.3 * torch.rand(shape, generator=g)
        elif name == "storage_tokens":
            v = 0.01 * torch.randn(shape, generator=g)  # variance ~1e-4: block 0's norm1 feels eps (see above)
        elif name in ("cls_token", "mask_token"):
            v = torch.randn(shape, generator=g)
        elif name.endswith(".weight") and len(shape) >= 2:
            v = torch.randn(shape, generator=g) / math.sqrt(int(np.prod(shape[1:])))
        elif name.endswith("attn.qkv.bias"):
            v = 0.5 * torch.randn(shape, generator=g)
        else:
            v = 0.1 * torch.randn(shape, generator=g)
        sd[name] = v.to(torch.float32).contiguous()
    return sd


# ---------------------------------------------------------------------------------------------
# References: each returns golden arrays by golden key

STORAGE_KEY = "x_storage_tokens"


def _np(t):
    return G._np(t)


class HFReference:
    """transformers' DINOv3ViTModel. Output equivalences (tied norm):
    last_hidden_state = norm(all tokens) -> [:, 0] x_norm_clstoken, [:, 1:1+R] x_storage_tokens,
    [:, 1+R:] x_norm_patchtokens; pooler_output = last_hidden_state[:, 0] = forward;
    hidden_states = (embeddings, block 0 out, ..., block L-1 out), all before the final norm, so
    x_prenorm = hidden_states[-1] and get_intermediate_layers(n=[i], norm=True) = norm(hidden_states[i+1]).
    With an untied cls_norm (not in transformers) the two norms are applied here to hidden_states,
    as the official forward_features / get_intermediate_layers do."""

    name = "transformers DINOv3ViTModel"

    def __init__(self, spec: L.V3Spec, sd):
        self.spec = spec
        self.model, left = L.hf_model(spec, sd)
        self.cls_norm = None
        if spec.untie_cls_and_patch_norms:
            self.name += " + cls_norm by hand"
            self.cls_norm = torch.nn.LayerNorm(spec.embed_dim, eps=L.LN_EPS)
            self.cls_norm.load_state_dict({"weight": left["cls_norm.weight"], "bias": left["cls_norm.bias"]})
            self.cls_norm.eval()

    def _normed(self, h):
        """(cls + storage, patches) normed as the official code does for this model."""
        r1 = 1 + self.spec.n_storage_tokens
        if self.cls_norm is None:
            n = self.model.norm(h)
            return n[:, :r1], n[:, r1:]
        return self.cls_norm(h[:, :r1]), self.model.norm(h[:, r1:])

    @torch.no_grad()
    def run(self, x, masks, keys, intermediate):
        out = {}
        if any(not k.startswith("intermediate.") for k in keys):
            o = self.model(pixel_values=x, bool_masked_pos=masks, output_hidden_states=True)
            assert len(o.hidden_states) == self.spec.depth + 1
            if self.cls_norm is None:
                r1 = 1 + self.spec.n_storage_tokens
                last = o.last_hidden_state
                prefix, patches, fwd = last[:, :r1], last[:, r1:], o.pooler_output
            else:
                prefix, patches = self._normed(o.hidden_states[-1])
                fwd = prefix[:, 0]
            out.update(x_norm_clstoken=prefix[:, 0], x_storage_tokens=prefix[:, 1:], x_norm_patchtokens=patches,
                       x_prenorm=o.hidden_states[-1], forward=fwd)
        if intermediate:
            assert masks is None, "get_intermediate_layers takes no masks"
            hs = self.model(pixel_values=x, output_hidden_states=True).hidden_states
            for i in intermediate:
                prefix, patches = self._normed(hs[i + 1])
                out[f"intermediate.{i}.patch"] = patches
                out[f"intermediate.{i}.cls"] = prefix[:, 0]
        return {k: _np(out[k]) for k in keys}


class OfficialReference(G.OfficialReference):
    """The official DinoVisionTransformer: forward_features, forward, get_intermediate_layers."""

    name = "official dinov3 DinoVisionTransformer"
    feature_keys = ("x_norm_clstoken", "x_storage_tokens", "x_norm_patchtokens", "x_prenorm")

    def __init__(self, spec: L.V3Spec, sd, directory: str):
        self.spec = spec
        self.model = L.official_model(spec, sd, directory)


class TimmReference:
    """timm's Eva (vit_*_patch16_dinov3_qkvb shape-overridden). forward_intermediates(norm=False)
    gives every block's output split into prefix and patch tokens; the final norm is timm's `norm`
    (tied) or, untied, cls_norm by hand on the prefix. timm has no mask tokens: no masked cases."""

    name = "timm Eva"

    def __init__(self, spec: L.V3Spec, sd):
        self.spec = spec
        self.model, left = L.timm_loaded(spec, sd)
        self.cls_norm = None
        if spec.untie_cls_and_patch_norms:
            self.name += " + cls_norm by hand"
            self.cls_norm = torch.nn.LayerNorm(spec.embed_dim, eps=L.LN_EPS)
            self.cls_norm.load_state_dict({"weight": left["cls_norm.weight"], "bias": left["cls_norm.bias"]})

    @torch.no_grad()
    def run(self, x, masks, keys, intermediate):
        assert masks is None, "timm's Eva has no mask token"
        blocks = self.model.forward_intermediates(x, indices=list(range(self.spec.depth)), norm=False,
                                                  output_fmt="NLC", return_prefix_tokens=True,
                                                  intermediates_only=True)
        hs = [torch.cat((prefix, patch), dim=1) for patch, prefix in blocks]

        def normed(h):
            r1 = 1 + self.spec.n_storage_tokens
            if self.cls_norm is None:
                n = self.model.norm(h)
                return n[:, :r1], n[:, r1:]
            return self.cls_norm(h[:, :r1]), self.model.norm(h[:, r1:])

        out = {}
        prefix, patches = normed(hs[-1])
        out.update(x_norm_clstoken=prefix[:, 0], x_storage_tokens=prefix[:, 1:], x_norm_patchtokens=patches,
                   x_prenorm=hs[-1])
        out["forward"] = self.model(x) if self.cls_norm is None else prefix[:, 0]  # pool 'token', no head
        for i in intermediate:
            p, q = normed(hs[i])
            out[f"intermediate.{i}.patch"] = q
            out[f"intermediate.{i}.cls"] = p[:, 0]
        return {k: _np(out[k]) for k in keys}


# ---------------------------------------------------------------------------------------------
# Sets


# File names of the outputs: goldens.short_name (x_storage_tokens -> "storage").
short_name = G.short_name
SHORT_KEYS = {v: k for k, v in G.OUT_SHORT.items()}


def _keys(*names: str) -> list:
    """Golden keys from short names: cls, storage, patch, prenorm, forward, int<i>, int<i>.cls|patch."""
    keys = []
    for n in names:
        if n.startswith("int"):
            i, _, part = n[3:].partition(".")
            keys += [f"intermediate.{i}.{p}" for p in ((part,) if part else ("patch", "cls"))]
        else:
            keys.append(SHORT_KEYS[n])
    return keys


@dataclass
class SetSpec:
    folder: str
    model: L.V3Spec
    truth: str  # "hf" | "official"
    cases: list  # goldens.Case


def tiny_sets() -> list:
    sets = []
    for folder, spec in TINY.items():
        last = f"int{spec.depth - 1}"
        cases = [
            G.Case("small", (1, 3, 32, 48), _keys("cls", "storage", "patch", "prenorm", "forward", "int0", last),
                   stored_input=True),
            G.Case("x224", (2, 3, 224, 224), _keys("cls", "storage", "patch", "forward", "int0.cls", last)),
            G.Case("x160x256", (1, 3, 160, 256), _keys("cls", "storage", "patch", "prenorm", "forward", "int0", last)),
            G.Case("x512", (1, 3, 512, 512), _keys("cls", "storage", "forward")),
            G.Case("x640", (1, 3, 640, 640), _keys("cls", "storage", "forward")),
            G.Case("masked224", (2, 3, 224, 224), _keys("cls", "storage", "patch", "forward"), masked=True),
        ]
        sets.append(SetSpec(folder, spec, "official" if spec.untie_cls_and_patch_norms else "hf", cases))
    return sets


def full_sets() -> list:
    sets = []
    for name, spec in FULL.items():
        every = _keys("cls", "storage", "patch", "prenorm", "forward")
        cases = [
            G.Case("x224", (2, 3, 224, 224), every + _keys("int0", "int8", "int9", "int10", "int11")),
            G.Case("x160x256", (1, 3, 160, 256), every + _keys("int5", "int11")),
            G.Case("x512", (1, 3, 512, 512), every),
            G.Case("x640", (1, 3, 640, 640), every),
            G.Case("masked224", (2, 3, 224, 224), every, masked=True),
        ]
        sets.append(SetSpec(name, spec, "hf", cases))
    return sets


def set_names() -> list:
    return [s.folder for s in tiny_sets()] + [s.folder for s in full_sets()]


def reference_for(spec: SetSpec, sd, official: str = "", allow_fallback: bool = False):
    """The set's truth. An official-truth set without the official code: an error, or with
    allow_fallback (--check) the transformers blocks + cls_norm by hand."""
    if spec.truth == "official":
        if official:
            return OfficialReference(spec.model, sd, official)
        if not allow_fallback:
            raise SystemExit(f"{spec.folder} is made by the official dinov3 code: pass --official DIR or set "
                             f"{OFFICIAL_ENV} to a checkout of facebookresearch/dinov3")
    return HFReference(spec.model, sd)


def case_input(spec: SetSpec, case):
    seed = G.case_seed(spec.folder, case.name)
    return lcg_tensor(seed, case.shape), seed


def case_masks(spec: SetSpec, case):
    if not case.masked:
        return None
    b, _, h, w = case.shape
    return G.seeded_masks(G.case_seed(spec.folder, case.name, "masks"), b, (h // PATCH) * (w // PATCH))


def compute_case(spec: SetSpec, ref, case, keys=None) -> "dict[str, np.ndarray]":
    x, _ = case_input(spec, case)
    masks = case_masks(spec, case)
    keys = case.keys if keys is None else keys
    inter = sorted({int(k.split(".")[1]) for k in keys if k.startswith("intermediate.")})
    return ref.run(torch.from_numpy(x), None if masks is None else torch.from_numpy(masks), keys, inter)


def write_set(spec: SetSpec, folder: str, official: str = "", log=print) -> dict:
    """Writes one set into `folder` (created; must not exist). Returns the manifest."""
    os.makedirs(folder)
    sd = seeded_state_dict(spec.model)
    weights = "model.safetensors"
    G.save_weights(os.path.join(folder, weights), sd, spec.model.num_heads)
    ref = reference_for(spec, sd, official)
    cases = G.write_cases(spec, ref, G.ArrayWriter(folder), case_input, case_masks, compute_case, log,
                          source=f" ({ref.name})")
    manifest = OrderedDict(format=G.FORMAT, family=FAMILY, model=spec.folder, weights=weights,
                           num_heads=spec.model.num_heads, cases=cases)
    G.write_json(os.path.join(folder, "manifest.json"), manifest)
    return manifest


def write_sets(specs, root: str, official: str = "", log=print) -> None:
    G.write_sets(specs, root, log, write=lambda spec, folder, log: write_set(spec, folder, official, log))
