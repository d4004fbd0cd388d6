"""DINOv3 ViT weight layouts: the official hub names and their transformers / timm counterparts.

Hub layout = the key names, shapes and order of the official `DinoVisionTransformer.state_dict()`
(facebookresearch/dinov3, dinov3/models/vision_transformer.py), which is what the hub `.pth` files
hold. The mappings below are key by key and load strictly (no missing or unexpected keys):

  hub                                   transformers DINOv3ViTModel (disk / in memory)    timm Eva
  cls_token (1,1,D)                     embeddings.cls_token                               cls_token
  storage_tokens (1,R,D)                embeddings.register_tokens                         reg_token
  mask_token (1,D)                      embeddings.mask_token (1,1,D)                      - (no masks)
  patch_embed.proj.{weight,bias}        embeddings.patch_embeddings.{weight,bias}          patch_embed.proj.*
  rope_embed.periods (Dh/4,)            - (inv_freq, not persistent, recomputed)           - (recomputed)
  blocks.N.norm1.*                      layer.N.norm1.*                                    blocks.N.norm1.*
  blocks.N.attn.qkv.weight (3D,D)       layer.N.attention.{q,k,v}_proj.weight (rows)       blocks.N.attn.qkv.weight
  blocks.N.attn.qkv.bias (3D,)          layer.N.attention.{q,v}_proj.bias (k has none)     blocks.N.attn.{q,v}_bias
  blocks.N.attn.qkv.bias_mask (3D,)     - (must be 1,0,1 by thirds)                        - (k_bias buffer = 0)
  blocks.N.attn.proj.*                  layer.N.attention.o_proj.*                         blocks.N.attn.proj.*
  blocks.N.ls1.gamma / ls2.gamma        layer.N.layer_scale1.lambda1 / layer_scale2.lambda1  blocks.N.gamma_1 / gamma_2
  blocks.N.norm2.*                      layer.N.norm2.*                                    blocks.N.norm2.*
  blocks.N.mlp.fc1.* / fc2.*            layer.N.mlp.up_proj.* / down_proj.*                blocks.N.mlp.fc1.* / fc2.*
  blocks.N.mlp.w1.* / w2.* / w3.*       layer.N.mlp.gate_proj.* / up_proj.* / down_proj.*  blocks.N.mlp.fc1_g/fc1_x/fc2
  norm.*                                norm.*                                             norm.*
  cls_norm.* (untied only)              - (not representable)                              - (not representable)
  local_cls_norm.* (training only)      - (dropped: never used in eval)                    - (dropped)

transformers 5 keeps `model.layer.N.` in memory and writes `layer.N.` with save_pretrained (its
conversion_mapping renames `layer.` -> `model.layer.` on load); both spellings load.
The official qkv bias is multiplied by `bias_mask` (LinearKMaskedBias); HF and timm have no key bias
at all, so the key third of `qkv.bias` is dropped - which is exact only when its mask third is 0.
"""
import json
import os
from collections import OrderedDict
from dataclasses import dataclass

import torch

from . import compat  # noqa: F401 - transformers and timm import torchvision
from .keymap import rename_block_param

PATCH = 16
ROPE_BASE = 100.0
LN_EPS = 1e-5  # "layernormbf16" in the official code (DINOv2's "layernorm" is 1e-6)
ALIGN = {"swiglu": 8, "swiglu32": 32, "swiglu64": 64, "swiglu128": 128}


class Unrepresentable(ValueError):
    """The weights hold something the target code cannot express (e.g. an untied cls norm)."""


@dataclass(frozen=True)
class V3Spec:
    """A DINOv3 ViT as the official hub constructors build it (hub/backbones.py), any width."""
    name: str
    embed_dim: int
    depth: int
    num_heads: int
    ffn_layer: str = "mlp"  # "mlp" | "swiglu" | "swiglu32" | "swiglu64" | "swiglu128"
    ffn_ratio: float = 4.0
    untie_cls_and_patch_norms: bool = False
    n_storage_tokens: int = 4
    mask_k_bias: bool = True
    qkv_bias: bool = True
    patch_size: int = PATCH
    img_size: int = 224

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    @property
    def swiglu(self) -> bool:
        return self.ffn_layer.startswith("swiglu")

    @property
    def hidden(self) -> int:
        """FFN width as SelfAttentionBlock + Mlp/SwiGLUFFN compute it: int(D * ffn_ratio) for the
        MLP; SwiGLU takes d = int(that * 2 / 3) and rounds it up to align_to."""
        h = int(self.embed_dim * self.ffn_ratio)
        if not self.swiglu:
            return h
        d = int(h * 2 / 3)
        return d + (-d % ALIGN[self.ffn_layer])

    def official_kwargs(self) -> dict:
        """DinoVisionTransformer arguments, as _make_dinov3_vit passes them for the hub models."""
        return dict(
            img_size=self.img_size, patch_size=self.patch_size, in_chans=3,
            pos_embed_rope_base=100, pos_embed_rope_normalize_coords="separate",
            pos_embed_rope_rescale_coords=2, pos_embed_rope_dtype="fp32",
            embed_dim=self.embed_dim, depth=self.depth, num_heads=self.num_heads, ffn_ratio=self.ffn_ratio,
            qkv_bias=self.qkv_bias, drop_path_rate=0.0, layerscale_init=1.0e-05, norm_layer="layernormbf16",
            ffn_layer=self.ffn_layer, ffn_bias=True, proj_bias=True, n_storage_tokens=self.n_storage_tokens,
            mask_k_bias=self.mask_k_bias, untie_cls_and_patch_norms=self.untie_cls_and_patch_norms,
        )


# ---------------------------------------------------------------------------------------------
# The hub layout, written out (checked against the official module in make-goldens --check)


def rope_periods(head_dim: int, base: float = 100) -> torch.Tensor:
    """RopePositionEmbedding._init_weights with `base` and dtype fp32, the same ops:
    periods[i] = base ** (2 i / (Dh/2)), i < Dh/4."""
    return base ** (2 * torch.arange(head_dim // 4, dtype=torch.float32) / (head_dim // 2))


def bias_mask(dim: int) -> torch.Tensor:
    """init_weights_vit's LinearKMaskedBias mask: 1 for q and v, 0 for the key third."""
    m = torch.ones(3 * dim, dtype=torch.float32)
    m[dim:2 * dim] = 0
    return m


def hub_shapes(spec: V3Spec) -> "OrderedDict[str, tuple]":
    """Names and shapes of DinoVisionTransformer(**spec.official_kwargs()).state_dict(), in its order."""
    d, h, p = spec.embed_dim, spec.hidden, spec.patch_size
    out = OrderedDict(cls_token=(1, 1, d))
    if spec.n_storage_tokens:
        out["storage_tokens"] = (1, spec.n_storage_tokens, d)
    out["mask_token"] = (1, d)
    out["patch_embed.proj.weight"] = (d, 3, p, p)
    out["patch_embed.proj.bias"] = (d,)
    out["rope_embed.periods"] = (spec.head_dim // 4,)
    for i in range(spec.depth):
        b = f"blocks.{i}."
        out[b + "norm1.weight"] = (d,)
        out[b + "norm1.bias"] = (d,)
        out[b + "attn.qkv.weight"] = (3 * d, d)
        if spec.qkv_bias:
            out[b + "attn.qkv.bias"] = (3 * d,)
            if spec.mask_k_bias:
                out[b + "attn.qkv.bias_mask"] = (3 * d,)
        out[b + "attn.proj.weight"] = (d, d)
        out[b + "attn.proj.bias"] = (d,)
        out[b + "ls1.gamma"] = (d,)
        out[b + "norm2.weight"] = (d,)
        out[b + "norm2.bias"] = (d,)
        if spec.swiglu:
            for w, shape in (("w1", (h, d)), ("w2", (h, d)), ("w3", (d, h))):
                out[f"{b}mlp.{w}.weight"] = shape
                out[f"{b}mlp.{w}.bias"] = (shape[0],)
        else:
            out[b + "mlp.fc1.weight"] = (h, d)
            out[b + "mlp.fc1.bias"] = (h,)
            out[b + "mlp.fc2.weight"] = (d, h)
            out[b + "mlp.fc2.bias"] = (d,)
        out[b + "ls2.gamma"] = (d,)
    out["norm.weight"] = (d,)
    out["norm.bias"] = (d,)
    if spec.untie_cls_and_patch_norms:
        out["cls_norm.weight"] = (d,)
        out["cls_norm.bias"] = (d,)
    return out


def architecture(sd, num_heads: int, name: str = "") -> V3Spec:
    """The V3Spec of a hub-layout state dict (heads are not in the weights: Dh = D / heads)."""
    d, _, p, _ = sd["patch_embed.proj.weight"].shape
    depth = 0
    while f"blocks.{depth}.norm1.weight" in sd:
        depth += 1
    swiglu = "blocks.0.mlp.w1.weight" in sd
    hidden = sd["blocks.0.mlp.w1.weight" if swiglu else "blocks.0.mlp.fc1.weight"].shape[0]
    r = sd["storage_tokens"].shape[1] if "storage_tokens" in sd else 0
    if swiglu:
        align = next((a for a, n in ((8, "swiglu"), (64, "swiglu64"), (32, "swiglu32"), (128, "swiglu128"))
                      if hidden % a == 0), None)
        ffn_layer = {8: "swiglu", 32: "swiglu32", 64: "swiglu64", 128: "swiglu128"}[align]
        ratio = hidden * 3 / 2 / d  # int(D r * 2/3) rounded up: exact when D r * 2/3 is a multiple of align
    else:
        ffn_layer, ratio = "mlp", hidden / d
    spec = V3Spec(name or "hub", int(d), depth, num_heads, ffn_layer, ratio,
                  untie_cls_and_patch_norms="cls_norm.weight" in sd, n_storage_tokens=r,
                  mask_k_bias="blocks.0.attn.qkv.bias_mask" in sd, qkv_bias="blocks.0.attn.qkv.bias" in sd,
                  patch_size=int(p))
    assert spec.hidden == hidden, f"cannot express an FFN width of {hidden} at D {d}"
    return spec


# ---------------------------------------------------------------------------------------------
# hub -> transformers


def _check_periods(sd, spec: V3Spec, tol: float = 1e-2) -> float:
    """HF and timm recompute the periods; they can only stand for stored ones close to the formula.
    Returns the largest relative deviation (bf16-rounded periods deviate by up to 2^-9)."""
    if "rope_embed.periods" not in sd:
        return 0.0
    want = rope_periods(spec.head_dim)
    got = sd["rope_embed.periods"].float()
    if got.shape != want.shape:
        raise Unrepresentable(f"rope_embed.periods has shape {tuple(got.shape)}, head dim {spec.head_dim} "
                              f"needs {tuple(want.shape)}: wrong num_heads?")
    dev = float(((got - want).abs() / want).max())
    if dev > tol:
        raise Unrepresentable(f"rope_embed.periods deviates from base-100 periods by {dev:.3g} (relative)")
    return dev


def _check_bias_mask(name: str, mask: torch.Tensor) -> None:
    d = mask.shape[0] // 3
    if not torch.equal(mask.float(), bias_mask(d)):
        raise Unrepresentable(f"{name} is not (1, 0, 1) by thirds: the key-bias drop would not be exact")


def hub_to_hf(sd, num_heads: int, *, disk_names: bool = True, allow_cls_norm: bool = False):
    """Hub state dict -> transformers DINOv3ViTModel state dict. Returns (hf_sd, left_over): the hub
    keys with no HF name that are harmless to drop (local_cls_norm.*, and cls_norm.* when
    `allow_cls_norm`, for a caller that applies it itself). disk_names: `layer.N.` (what
    save_pretrained writes and the hub HF repos hold) instead of the in-memory `model.layer.N.`.
    The effective qkv bias (bias * bias_mask) is what is mapped; the key third must be masked."""
    spec = architecture(sd, num_heads)
    _check_periods(sd, spec)
    layer = "layer." if disk_names else "model.layer."
    direct = {
        "cls_token": "embeddings.cls_token", "storage_tokens": "embeddings.register_tokens",
        "patch_embed.proj.weight": "embeddings.patch_embeddings.weight",
        "patch_embed.proj.bias": "embeddings.patch_embeddings.bias",
        "norm.weight": "norm.weight", "norm.bias": "norm.bias",
    }
    block = {
        "norm1": "norm1", "norm2": "norm2", "attn.proj": "attention.o_proj",
        "ls1.gamma": "layer_scale1.lambda1", "ls2.gamma": "layer_scale2.lambda1",
        "mlp.fc1": "mlp.up_proj", "mlp.fc2": "mlp.down_proj",
        "mlp.w1": "mlp.gate_proj", "mlp.w2": "mlp.up_proj", "mlp.w3": "mlp.down_proj",
    }
    out, left = OrderedDict(), OrderedDict()
    for name, t in sd.items():
        if name in direct:
            out[direct[name]] = t
        elif name == "mask_token":
            out["embeddings.mask_token"] = t.reshape(1, 1, -1)
        elif name == "rope_embed.periods" or name.endswith(".attn.qkv.bias_mask"):
            continue  # checked above / below
        elif name.startswith("local_cls_norm."):
            left[name] = t
        elif name.startswith("cls_norm."):
            if not allow_cls_norm:
                raise Unrepresentable("transformers' DINOv3ViTModel has one final norm; this model has an untied "
                                      "cls_norm (untie_cls_and_patch_norms)")
            left[name] = t
        elif name.startswith("blocks."):
            parts = name.split(".")
            prefix, rest = f"{layer}{parts[1]}.", ".".join(parts[2:])
            d = sd["norm.weight"].shape[0]
            if rest == "attn.qkv.weight":
                for j, target in enumerate(("q_proj", "k_proj", "v_proj")):
                    out[f"{prefix}attention.{target}.weight"] = t[j * d:(j + 1) * d].clone()
                continue
            if rest == "attn.qkv.bias":
                mask_name = name + "_mask"
                if mask_name in sd:
                    _check_bias_mask(mask_name, sd[mask_name])
                    t = t * sd[mask_name].to(t.dtype)  # what LinearKMaskedBias adds
                elif bool((t[d:2 * d] != 0).any()):
                    raise Unrepresentable(f"{name}: a non-zero key bias without a mask; HF has no key bias")
                out[f"{prefix}attention.q_proj.bias"] = t[:d].clone()
                out[f"{prefix}attention.v_proj.bias"] = t[2 * d:].clone()
                continue
            out[prefix + rename_block_param(rest, block, name, "no HF name for hub key")] = t
        else:
            raise KeyError(f"no HF name for hub key {name}")
    return out, left


def hf_config(spec: V3Spec, attn_implementation: str = "eager"):
    """The DINOv3ViTConfig of a hub architecture (what the HF conversion sets)."""
    from transformers import DINOv3ViTConfig

    # an untied cls_norm is not in the config: the caller applies it (hub_to_hf(allow_cls_norm=True))
    if spec.qkv_bias and not spec.mask_k_bias:
        raise Unrepresentable("a qkv bias without bias_mask has a key bias, which HF lacks")
    cfg = DINOv3ViTConfig(
        patch_size=spec.patch_size, hidden_size=spec.embed_dim, intermediate_size=spec.hidden,
        num_hidden_layers=spec.depth, num_attention_heads=spec.num_heads,
        hidden_act="silu" if spec.swiglu else "gelu", use_gated_mlp=spec.swiglu,
        layer_norm_eps=LN_EPS, rope_theta=ROPE_BASE, image_size=spec.img_size, num_channels=3,
        query_bias=spec.qkv_bias, key_bias=False, value_bias=spec.qkv_bias, proj_bias=True, mlp_bias=True,
        layerscale_value=1.0, drop_path_rate=0.0, num_register_tokens=spec.n_storage_tokens,
        pos_embed_shift=None, pos_embed_jitter=None, pos_embed_rescale=2.0,
    )
    cfg._attn_implementation = attn_implementation
    return cfg


def hf_model(spec: V3Spec, sd, attn_implementation: str = "eager"):
    """transformers' DINOv3ViTModel loaded strictly from hub weights; returns (model, left_over)."""
    from transformers import DINOv3ViTModel

    hf_sd, left = hub_to_hf(sd, spec.num_heads, disk_names=False, allow_cls_norm=spec.untie_cls_and_patch_norms)
    model = DINOv3ViTModel(hf_config(spec, attn_implementation))
    result = model.load_state_dict(hf_sd, strict=True)
    assert not result.missing_keys and not result.unexpected_keys, result
    return model.eval(), left


def hf_to_hub(hf_sd, num_heads: int) -> "OrderedDict[str, torch.Tensor]":
    """The inverse for tied models (disk or in-memory names): a hub state dict in the official order
    with a zero key bias, the (1, 0, 1) bias_mask and the formula periods."""
    sd = {k[len("model."):] if k.startswith("model.layer.") else k: v for k, v in hf_sd.items()}
    d = sd["norm.weight"].shape[0]
    depth = 0
    while f"layer.{depth}.norm1.weight" in sd:
        depth += 1
    gated = "layer.0.mlp.gate_proj.weight" in sd
    hidden = sd["layer.0.mlp.up_proj.weight"].shape[0]
    ratio = hidden * 3 / 2 / d if gated else hidden / d
    has_bias = "layer.0.attention.q_proj.bias" in sd
    spec = V3Spec("hf", d, depth, num_heads, "swiglu" if gated else "mlp", ratio,
                  n_storage_tokens=sd["embeddings.register_tokens"].shape[1], mask_k_bias=has_bias,
                  qkv_bias=has_bias, patch_size=sd["embeddings.patch_embeddings.weight"].shape[-1])
    out = OrderedDict()
    for name in hub_shapes(spec):
        b = name.split(".")
        if name == "cls_token":
            out[name] = sd["embeddings.cls_token"]
        elif name == "storage_tokens":
            out[name] = sd["embeddings.register_tokens"]
        elif name == "mask_token":
            out[name] = sd["embeddings.mask_token"].reshape(1, d)
        elif name.startswith("patch_embed.proj."):
            out[name] = sd["embeddings.patch_embeddings." + b[-1]]
        elif name == "rope_embed.periods":
            out[name] = rope_periods(spec.head_dim)
        elif name.startswith("norm."):
            out[name] = sd[name]
        else:
            p, rest = f"layer.{b[1]}.", ".".join(b[2:])
            a = p + "attention."
            if rest == "attn.qkv.weight":
                out[name] = torch.cat([sd[a + f"{x}_proj.weight"] for x in "qkv"])
            elif rest == "attn.qkv.bias":
                q = sd[a + "q_proj.bias"]
                out[name] = torch.cat([q, torch.zeros_like(q), sd[a + "v_proj.bias"]])
            elif rest == "attn.qkv.bias_mask":
                out[name] = bias_mask(d)
            else:
                inv = {"attn.proj": "attention.o_proj", "ls1.gamma": "layer_scale1.lambda1",
                       "ls2.gamma": "layer_scale2.lambda1", "norm1": "norm1", "norm2": "norm2",
                       "mlp.fc1": "mlp.up_proj", "mlp.fc2": "mlp.down_proj", "mlp.w1": "mlp.gate_proj",
                       "mlp.w2": "mlp.up_proj", "mlp.w3": "mlp.down_proj"}
                src = next(s for s in inv if rest == s or rest.startswith(s + "."))
                out[name] = sd[p + inv[src] + rest[len(src):]]
    return out


# ---------------------------------------------------------------------------------------------
# hub -> timm


def hub_to_timm(sd, num_heads: int, *, allow_cls_norm: bool = False):
    """Hub state dict -> timm Eva (vit_*_patch16_dinov3_qkvb) state dict, as timm's own
    eva.checkpoint_filter_fn converts it, plus the checks of hub_to_hf. Returns (timm_sd, left_over)."""
    spec = architecture(sd, num_heads)
    _check_periods(sd, spec)
    out, left = OrderedDict(), OrderedDict()
    for name, t in sd.items():
        if name in ("mask_token", "rope_embed.periods") or name.endswith(".bias_mask"):
            continue
        if name.startswith("local_cls_norm."):
            left[name] = t
            continue
        if name.startswith("cls_norm."):
            if not allow_cls_norm:
                raise Unrepresentable("timm's Eva has one final norm; this model has an untied cls_norm")
            left[name] = t
            continue
        if name.endswith("attn.qkv.bias"):
            d = t.shape[0] // 3
            if name + "_mask" in sd:
                _check_bias_mask(name + "_mask", sd[name + "_mask"])
            elif bool((t[d:2 * d] != 0).any()):
                raise Unrepresentable(f"{name}: a non-zero key bias without a mask; timm has no key bias")
            out[name.replace("qkv.bias", "q_bias")] = t[:d].clone()
            out[name.replace("qkv.bias", "v_bias")] = t[2 * d:].clone()
            continue
        k = name.replace("ls1.gamma", "gamma_1").replace("ls2.gamma", "gamma_2").replace("storage_tokens", "reg_token")
        k = k.replace("mlp.w1", "mlp.fc1_g").replace("mlp.w2", "mlp.fc1_x").replace("mlp.w3", "mlp.fc2")
        out[k] = t
    return out, left


def timm_model(spec: V3Spec):
    """timm's DINOv3 Eva with this shape: vit_small_patch16_dinov3_qkvb (MLP) or
    vit_small_plus_patch16_dinov3_qkvb (SwiGLU) with the width, depth and heads overridden.
    timm's SwiGLU width is int(D * mlp_ratio) rounded up to align_to, so mlp_ratio = hidden / D."""
    import timm

    if not spec.qkv_bias:
        raise Unrepresentable("qkv_bias False: use timm's vit_*_patch16_dinov3 entries (not needed here)")
    kwargs = dict(pretrained=False, embed_dim=spec.embed_dim, depth=spec.depth, num_heads=spec.num_heads,
                  num_classes=0, global_pool="token", img_size=spec.img_size, num_reg_tokens=spec.n_storage_tokens,
                  patch_size=spec.patch_size)  # else timm's converter resamples the patch embedding to 16
    if spec.swiglu:
        kwargs.update(mlp_ratio=spec.hidden / spec.embed_dim, swiglu_align_to=ALIGN[spec.ffn_layer])
        name = "vit_small_plus_patch16_dinov3_qkvb"
    else:
        kwargs.update(mlp_ratio=spec.hidden / spec.embed_dim)
        name = "vit_small_patch16_dinov3_qkvb"
    return timm.create_model(name, **kwargs).eval()


def timm_loaded(spec: V3Spec, sd):
    """timm's model loaded strictly from hub weights; returns (model, left_over)."""
    model = timm_model(spec)
    t_sd, left = hub_to_timm(sd, spec.num_heads, allow_cls_norm=spec.untie_cls_and_patch_norms)
    result = model.load_state_dict(t_sd, strict=True)
    assert not result.missing_keys and not result.unexpected_keys, result
    return model, left


# ---------------------------------------------------------------------------------------------
# Interop: a folder DinoKit wrote in HF layout


def check_hf_folder(folder: str, reference_hub_state_dict=None, num_heads: int = 0) -> dict:
    """Loads `folder` (config.json + model.safetensors) with DINOv3ViTModel.from_pretrained and
    reports what transformers says: {"missing_keys", "unexpected_keys", "mismatched_keys",
    "error_msgs", "model_type", "problems"}. With a hub reference state dict, every loaded tensor is
    also compared bit for bit with hub_to_hf(reference); differences are listed in "problems".
    Never raises for a load problem: the caller decides (an empty "problems" list = accepted)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import DINOv3ViTModel

    report = {"problems": []}
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    report["model_type"] = config.get("model_type")
    if config.get("model_type") != "dinov3_vit":
        report["problems"].append(f"model_type {config.get('model_type')!r}, expected 'dinov3_vit'")
    try:
        model, info = DINOv3ViTModel.from_pretrained(folder, output_loading_info=True)
    except Exception as e:  # noqa: BLE001 - reported, not raised
        report["problems"].append(f"from_pretrained failed: {type(e).__name__}: {e}")
        return report
    for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        v = info.get(k) or []
        report[k] = sorted(map(str, v))
        if v:
            report["problems"].append(f"{k}: {report[k]}")
    if reference_hub_state_dict is not None:
        heads = num_heads or model.config.num_attention_heads
        if heads != model.config.num_attention_heads:
            report["problems"].append(f"num_attention_heads {model.config.num_attention_heads}, expected {heads}")
        want, _ = hub_to_hf(reference_hub_state_dict, heads, disk_names=False)
        got = model.state_dict()
        for k, v in want.items():
            g = got.get(k)
            if g is None or g.dtype != v.dtype or g.shape != v.shape or not torch.equal(g, v):
                report["problems"].append(f"{k} differs from the reference")
    return report


def write_hf_folder(folder: str, hub_sd, num_heads: int) -> None:
    """What a correct HF export looks like (the same files save_pretrained writes): config.json and
    model.safetensors with on-disk names. Used to self-test check_hf_folder."""
    from safetensors.torch import save_file

    spec = architecture(hub_sd, num_heads)
    os.makedirs(folder, exist_ok=True)
    hf_sd, _ = hub_to_hf(hub_sd, num_heads, disk_names=True)
    save_file({k: v.contiguous() for k, v in hf_sd.items()}, os.path.join(folder, "model.safetensors"),
              metadata={"format": "pt"})
    cfg = hf_config(spec).to_dict()
    cfg["architectures"] = ["DINOv3ViTModel"]
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)


def official_model(spec: V3Spec, sd, official_dir: str, device=None):
    """The official DinoVisionTransformer from a checkout of facebookresearch/dinov3 (never vendored),
    loaded strictly. With device="meta" and sd None: just the module, for its names and shapes."""
    import sys

    if official_dir not in sys.path:
        sys.path.insert(0, official_dir)
    import logging

    logging.getLogger("dinov3").setLevel(logging.ERROR)
    from dinov3.models.vision_transformer import DinoVisionTransformer

    model = DinoVisionTransformer(**spec.official_kwargs(), device=device)
    if sd is not None:
        model.load_state_dict(sd, strict=True)
    return model.eval()

