"""Interop checks for DinoKit's HF folders and timm files, done by the consumers themselves.

`check_hf_folder` loads a folder with transformers' `from_pretrained` (`check_hf_sharded_folder`
one whose weights are split into shards, and compares the split with huggingface_hub's) and
`check_timm` loads a safetensors file strictly into a timm `VisionTransformer`; they compare every
tensor bit for bit
with a hub-layout reference state dict mapped the way the real converters map it
(dinov2-spec.md §1.12 for HF, timm's own `checkpoint_filter_fn` for timm). They raise on the first
problem and return None when the file is accepted.

The HF mapping here produces the names HF checkpoints carry on disk (`attention.attention.query`,
`mlp.weights_in`, ...), which is what `save_pretrained` writes in every transformers version;
transformers 5 renames them in memory (`attention.q_proj`, `mlp.gate_proj`/`up_proj`), so the
comparison with a loaded model goes through `_loaded_as_disk_names`.
"""
import json
import os
from collections import OrderedDict

import torch

from . import compat  # noqa: F401 - transformers and timm import torchvision
from .keymap import rename_block_param

PATCH = 14


# ---------------------------------------------------------------------------------------------
# Mappings


def hub_to_hf_disk(sd) -> "OrderedDict[str, torch.Tensor]":
    """Hub names -> HF on-disk names (convert_dinov2_to_hf.py); qkv split by rows into q, k, v."""
    direct = {
        "cls_token": "embeddings.cls_token",
        "mask_token": "embeddings.mask_token",
        "register_tokens": "embeddings.register_tokens",
        "pos_embed": "embeddings.position_embeddings",
        "patch_embed.proj.weight": "embeddings.patch_embeddings.projection.weight",
        "patch_embed.proj.bias": "embeddings.patch_embeddings.projection.bias",
        "norm.weight": "layernorm.weight",
        "norm.bias": "layernorm.bias",
    }
    block = {
        "norm1": "norm1", "norm2": "norm2", "attn.proj": "attention.output.dense",
        "ls1.gamma": "layer_scale1.lambda1", "ls2.gamma": "layer_scale2.lambda1",
        "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2",
        "mlp.w12": "mlp.weights_in", "mlp.w3": "mlp.weights_out",
    }
    out = OrderedDict()
    for name, t in sd.items():
        if name in direct:
            out[direct[name]] = t
            continue
        parts = name.split(".")
        if parts[0] != "blocks":
            raise KeyError(f"no HF name for hub key {name}")
        prefix, rest = f"encoder.layer.{parts[1]}.", ".".join(parts[2:])
        if rest.startswith("attn.qkv."):
            kind, d = rest.split(".")[-1], t.shape[0] // 3
            for j, target in enumerate(("query", "key", "value")):
                out[f"{prefix}attention.attention.{target}.{kind}"] = t[j * d:(j + 1) * d].clone()
            continue
        out[prefix + rename_block_param(rest, block, name, "no HF name for hub key")] = t
    return out


def architecture(sd) -> dict:
    """Shape facts of a hub-layout state dict (the number of heads is not in the weights)."""
    d, _, p, _ = sd["patch_embed.proj.weight"].shape
    n = sd["pos_embed"].shape[1] - 1
    grid = int(round(n ** 0.5))
    depth = 0
    while f"blocks.{depth}.norm1.weight" in sd:
        depth += 1
    swiglu = "blocks.0.mlp.w12.weight" in sd
    hidden = sd["blocks.0.mlp.w12.weight"].shape[0] // 2 if swiglu else sd["blocks.0.mlp.fc1.weight"].shape[0]
    registers = sd["register_tokens"].shape[1] if "register_tokens" in sd else 0
    return dict(embed_dim=d, patch_size=p, grid=grid, depth=depth, swiglu=swiglu, hidden=hidden, registers=registers)


def hf_config(arch: dict, num_heads: int):
    """The transformers config of a hub architecture, as the HF converters set it."""
    from transformers import Dinov2Config, Dinov2WithRegistersConfig

    assert arch["patch_size"] == PATCH
    d = arch["embed_dim"]
    # transformers 5 wants an integer mlp_ratio: hidden = int(d * r), SwiGLU then keeps 2/3 rounded up to 8.
    if arch["swiglu"]:
        ratio = next(r for r in range(1, 17) if (int(d * r * 2 / 3) + 7) // 8 * 8 == arch["hidden"])
    else:
        assert arch["hidden"] % d == 0, "transformers cannot express this MLP width"
        ratio = arch["hidden"] // d
    common = dict(hidden_size=d, num_hidden_layers=arch["depth"], num_attention_heads=num_heads,
                  mlp_ratio=ratio, image_size=PATCH * arch["grid"], patch_size=PATCH, num_channels=3,
                  layer_norm_eps=1e-6, hidden_act="gelu", layerscale_value=1.0, qkv_bias=True,
                  use_swiglu_ffn=arch["swiglu"], hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                  drop_path_rate=0.0)
    if arch["registers"]:
        return Dinov2WithRegistersConfig(num_register_tokens=arch["registers"], **common)
    return Dinov2Config(**common)


def hf_model_class(registers: bool):
    from transformers import Dinov2Model, Dinov2WithRegistersModel

    return Dinov2WithRegistersModel if registers else Dinov2Model


def _loaded_as_disk_names(model) -> "dict[str, torch.Tensor]":
    """A loaded model's tensors under HF on-disk names, whatever names this transformers version
    uses in memory (5.x: q/k/v/o_proj and a SwiGLU split into gate_proj/up_proj)."""
    out = {}
    for k, v in model.state_dict().items():
        k2 = (k.replace("attention.q_proj", "attention.attention.query")
               .replace("attention.k_proj", "attention.attention.key")
               .replace("attention.v_proj", "attention.attention.value")
               .replace("attention.o_proj", "attention.output.dense")
               .replace("mlp.down_proj", "mlp.weights_out"))
        out[k2] = v
    for k in [k for k in out if ".mlp.gate_proj." in k]:
        up = k.replace("gate_proj", "up_proj")
        out[k.replace("gate_proj", "weights_in")] = torch.cat([out.pop(k), out.pop(up)], dim=0)
    return out


# ---------------------------------------------------------------------------------------------
# Checks


def check_hf_folder(folder: str, reference_hub_state_dict, registers: bool) -> None:
    """transformers loads `folder` without missing, unexpected or mismatched keys, the config has
    the expected model type, and every tensor (in the file and in the loaded model) equals the
    mapped reference bit for bit."""
    from safetensors.torch import load_file

    cls = hf_model_class(registers)
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    want_type = "dinov2_with_registers" if registers else "dinov2"
    if config.get("model_type") != want_type:
        raise AssertionError(f"{folder}: model_type {config.get('model_type')!r}, expected {want_type!r}")
    model, info = cls.from_pretrained(folder, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    if problems:
        raise AssertionError(f"{folder}: transformers reports {problems}")
    expected = hub_to_hf_disk(reference_hub_state_dict)
    on_disk = _folder_tensors(folder)
    if set(on_disk) != set(expected):
        raise AssertionError(f"{folder}: names differ: extra {sorted(set(on_disk) - set(expected))}, "
                             f"missing {sorted(set(expected) - set(on_disk))}")
    loaded = _loaded_as_disk_names(model)
    for name, want in expected.items():
        for where, got in (("file", on_disk[name]), ("model", loaded.get(name))):
            if got is None:
                raise AssertionError(f"{folder}: {name} not in the loaded model")
            if got.dtype != want.dtype or got.shape != want.shape or not torch.equal(got, want):
                raise AssertionError(f"{folder}: {name} ({where}) differs from the reference")


def _folder_tensors(folder: str) -> "dict[str, torch.Tensor]":
    """Every tensor of a folder's safetensors weights: model.safetensors, or all shards of its index."""
    from safetensors.torch import load_file

    single = os.path.join(folder, "model.safetensors")
    if os.path.exists(single):
        return load_file(single)
    with open(os.path.join(folder, "model.safetensors.index.json")) as f:
        index = json.load(f)
    out = {}
    for shard in sorted(set(index["weight_map"].values())):
        for name, t in load_file(os.path.join(folder, shard)).items():
            if name in out:
                raise AssertionError(f"{folder}: {name} is in two shards")
            out[name] = t
    return out


def check_hf_sharded_folder(folder: str, reference_hub_state_dict, registers: bool, max_shard_size: str) -> None:
    """A folder DinoKit wrote with --max-shard-size: transformers loads it as `check_hf_folder`
    requires (no missing or unexpected keys, every value equal), there is no model.safetensors
    beside the shards, the index lists every tensor once with the shard that holds it and the
    right total_size, and the split (file names and weight_map) is the one huggingface_hub's
    splitter, which save_pretrained(max_shard_size=...) calls, makes of the loaded model."""
    from safetensors import safe_open

    check_hf_folder(folder, reference_hub_state_dict, registers)
    if os.path.exists(os.path.join(folder, "model.safetensors")):
        raise AssertionError(f"{folder}: model.safetensors beside the shards (readers would take it instead)")
    with open(os.path.join(folder, "model.safetensors.index.json")) as f:
        index = json.load(f)
    weight_map = index["weight_map"]
    expected = hub_to_hf_disk(reference_hub_state_dict)
    if set(weight_map) != set(expected):
        raise AssertionError(f"{folder}: the index lists {sorted(set(weight_map) ^ set(expected))[:6]} wrongly")
    for shard in sorted(set(weight_map.values())):
        with safe_open(os.path.join(folder, shard), "pt") as f:
            held = set(f.keys())
        if held != {k for k, v in weight_map.items() if v == shard}:
            raise AssertionError(f"{folder}: {shard} does not hold what the index says")
    total = sum(t.numel() * t.element_size() for t in expected.values())
    if index.get("metadata", {}).get("total_size") != total:
        raise AssertionError(f"{folder}: total_size {index.get('metadata')} is not {total}")
    if len(set(weight_map.values())) < 2:
        raise AssertionError(f"{folder}: not sharded")

    # The split huggingface_hub's splitter (what save_pretrained calls) makes of the loaded model's
    # tensors in module order, under on-disk names: the order transformers 4's save_pretrained
    # split in. (transformers 5 sorts the in-memory names, q_proj/k_proj/..., before it splits;
    # any split loads the same.)
    from huggingface_hub import split_torch_state_dict_into_shards

    model = hf_model_class(registers).from_pretrained(folder)
    split = split_torch_state_dict_into_shards(_module_order_disk_names(model), max_shard_size=max_shard_size)
    if split.tensor_to_filename != weight_map:
        differ = sorted(k for k in set(split.tensor_to_filename) | set(weight_map)
                        if split.tensor_to_filename.get(k) != weight_map.get(k))
        raise AssertionError(f"{folder}: split differs from huggingface_hub's at {differ[:6]}")
    mine = sorted(n for n in os.listdir(folder) if n.startswith("model"))
    if mine != sorted(list(split.filename_to_tensors) + ["model.safetensors.index.json"]):
        raise AssertionError(f"{folder}: weight files {mine}, huggingface_hub names {sorted(split.filename_to_tensors)}")


def _module_order_disk_names(model) -> "OrderedDict[str, torch.Tensor]":
    """The model's tensors in module (registration) order under HF on-disk names; SwiGLU's
    gate_proj/up_proj (transformers 5 in memory) as the one weights_in they are on disk."""
    state = model.state_dict()
    out = OrderedDict()
    for k, v in state.items():
        if ".mlp.up_proj." in k:
            continue
        if ".mlp.gate_proj." in k:
            out[k.replace("gate_proj", "weights_in")] = torch.cat([v, state[k.replace("gate_proj", "up_proj")]], dim=0)
            continue
        out[(k.replace("attention.q_proj", "attention.attention.query")
              .replace("attention.k_proj", "attention.attention.key")
              .replace("attention.v_proj", "attention.attention.value")
              .replace("attention.o_proj", "attention.output.dense")
              .replace("mlp.down_proj", "mlp.weights_out"))] = v
    return out


def timm_model(arch: dict, num_heads: int = 0):
    """A timm VisionTransformer with the DINOv2 settings for this shape (what timm's
    vit_*_patch14_dinov2 / _reg4_ / giant entries build). Heads do not change parameter shapes."""
    import torch.nn as nn
    from timm.layers import SwiGLUPacked
    from timm.models.vision_transformer import VisionTransformer

    d = arch["embed_dim"]
    kwargs = dict(img_size=PATCH * arch["grid"], patch_size=arch["patch_size"], embed_dim=d, depth=arch["depth"],
                  num_heads=num_heads or max(1, d // 64), init_values=1e-5, num_classes=0)
    if arch["swiglu"]:
        # timm's giant entry: SwiGLUPacked fc1 holds both halves, so its width is 2 * hidden.
        kwargs.update(mlp_ratio=(2 * arch["hidden"] + 0.5) / d, mlp_layer=SwiGLUPacked, act_layer=nn.SiLU)
    else:
        # +0.5: timm truncates int(d * ratio); keep the product safely above the integer.
        kwargs.update(mlp_ratio=(arch["hidden"] + 0.5) / d)
    if arch["registers"]:
        kwargs.update(reg_tokens=arch["registers"], no_embed_class=True)
    return VisionTransformer(**kwargs).eval()


def timm_converted(reference_hub_state_dict, model) -> "OrderedDict[str, torch.Tensor]":
    """timm's own converter applied to a copy of the hub state dict, made contiguous for saving."""
    from timm.models.vision_transformer import checkpoint_filter_fn

    sd = OrderedDict((k, v.clone()) for k, v in reference_hub_state_dict.items())
    return OrderedDict((k, v.contiguous()) for k, v in checkpoint_filter_fn(sd, model).items())


def check_timm(path: str, reference_hub_state_dict, name: str = "", num_heads: int = 0) -> None:
    """timm loads the safetensors file at `path` strictly, and every tensor equals what timm's
    converter makes of the reference, bit for bit. `name` only labels the messages."""
    from safetensors.torch import load_file

    label = name or path
    model = timm_model(architecture(reference_hub_state_dict), num_heads)
    check_timm_load(model, load_file(path), timm_converted(reference_hub_state_dict, model), label)


def check_timm_load(model, got, expected, label: str) -> None:
    """`got` loads strictly into the timm `model` and equals `expected` (timm's own conversion of
    the reference hub weights) name for name and bit for bit. Shared by DINOv2 and DINOv3."""
    result = model.load_state_dict(got, strict=True)
    if result.missing_keys or result.unexpected_keys:
        raise AssertionError(f"{label}: timm reports {result}")
    if set(got) != set(expected):
        raise AssertionError(f"{label}: names differ: extra {sorted(set(got) - set(expected))}, "
                             f"missing {sorted(set(expected) - set(got))}")
    for k, want in expected.items():
        if got[k].dtype != want.dtype or got[k].shape != want.shape or not torch.equal(got[k], want):
            raise AssertionError(f"{label}: {k} differs from timm's conversion of the reference")
