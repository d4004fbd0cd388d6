"""Golden sets (the input of `dinokit verify`) and kernel references, made by the real PyTorch code.

A golden set is a folder with `manifest.json`, the weights (`model.safetensors`, hub layout) and
float32 `.npy` outputs; see Fixtures/golden/README.md for the format. Which code is the truth:

- non-register models, interpolation "official": the official `DinoVisionTransformer` from PyPI
  dinov2 0.0.1.dev2 (0.1 offset, `scale_factor`, no antialias) — `forward_features`, `forward`,
  `get_intermediate_layers`;
- register models: transformers' `Dinov2WithRegistersModel` (size-based, antialiased bicubic, which
  is what the official register models do; the PyPI snapshot predates registers);
- interpolation "hf": transformers' `Dinov2Model` (size-based, no offset, no antialias).

Weights are the seeded ones from models.py, mapped hub -> HF key by key and loaded strictly.
Everything here is deterministic: fixed seeds, one thread, no file timestamps.
"""
import hashlib
import json
import os
import shutil
import zlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from . import compat  # noqa: F401 - transformers imports torchvision
from .keymap import rename_block_param
from .models import TINY, official_backbone, randomize_, tiny_state_dict
from .synthetic import lcg_tensor

FORMAT = "dinokit-golden/1"
KERNELS_FORMAT = "dinokit-kernels/1"
PATCH = 14


def make_deterministic() -> None:
    """One thread: a different thread count can change the blocking of CPU matmuls and so the last
    bits of the outputs. (Different CPU instruction sets can still change them; that is far below
    the verifier's tolerance, but byte-identical reruns are only promised on one machine.)"""
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)


# ---------------------------------------------------------------------------------------------
# Models and their weights


@dataclass(frozen=True)
class ModelSpec:
    name: str
    embed_dim: int
    depth: int
    num_heads: int
    img_size: int
    ffn_layer: str
    registers: int


def tiny_spec(name: str) -> ModelSpec:
    c = TINY[name]
    return ModelSpec(name, c["embed_dim"], c["depth"], c["num_heads"], c["img_size"], c["ffn_layer"], c["registers"])


FULL = {
    "dinov2_vits14": ModelSpec("dinov2_vits14", 384, 12, 6, 518, "mlp", 0),
    "dinov2_vits14_reg": ModelSpec("dinov2_vits14_reg", 384, 12, 6, 518, "mlp", 4),
}


def state_dict_for(spec: ModelSpec, seed: int = 0) -> "OrderedDict[str, torch.Tensor]":
    """Hub-layout weights. Tiny models use models.tiny_state_dict itself, so the goldens carry the
    same weights as every other tiny fixture; full-size shapes follow the same recipe."""
    if spec.name in TINY:
        return tiny_state_dict(spec.name, seed)
    model = official_backbone(spec.embed_dim, spec.depth, spec.num_heads, spec.img_size, spec.ffn_layer)
    sd = OrderedDict()
    for k, v in model.state_dict().items():
        sd[k] = v.detach().clone()
        if k == "pos_embed" and spec.registers:
            sd["register_tokens"] = torch.zeros(1, spec.registers, spec.embed_dim)
    randomize_(sd, seed)
    return sd


def official_model(spec: ModelSpec, sd):
    assert spec.registers == 0, "the PyPI snapshot of the official code has no register tokens"
    model = official_backbone(spec.embed_dim, spec.depth, spec.num_heads, spec.img_size, spec.ffn_layer)
    model.load_state_dict(sd, strict=True)
    return model.eval()


def _hf_attention_names(hf_keys) -> tuple:
    """transformers renamed the attention projections (query/key/value + output.dense -> q/k/v/o_proj);
    map to whichever names the installed version has."""
    if any(k.endswith("attention.q_proj.weight") for k in hf_keys):
        return ("attention.q_proj", "attention.k_proj", "attention.v_proj", "attention.o_proj")
    return ("attention.attention.query", "attention.attention.key", "attention.attention.value",
            "attention.output.dense")


def hub_to_hf(sd, hf_keys) -> "OrderedDict[str, torch.Tensor]":
    """dinov2-spec.md §1.12: official hub names -> HF Dinov2Model / Dinov2WithRegistersModel names;
    qkv is split into three projections (rows [0,D) query, [D,2D) key, [2D,3D) value)."""
    q, k, v, o = _hf_attention_names(hf_keys)
    direct = {
        "cls_token": "embeddings.cls_token",
        "mask_token": "embeddings.mask_token",
        "pos_embed": "embeddings.position_embeddings",
        "register_tokens": "embeddings.register_tokens",
        "patch_embed.proj.weight": "embeddings.patch_embeddings.projection.weight",
        "patch_embed.proj.bias": "embeddings.patch_embeddings.projection.bias",
        "norm.weight": "layernorm.weight",
        "norm.bias": "layernorm.bias",
    }
    block = {
        "norm1": "norm1", "norm2": "norm2", "attn.proj": o,
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
        assert parts[0] == "blocks", f"unmapped key {name}"
        i, rest = parts[1], ".".join(parts[2:])
        prefix = f"encoder.layer.{i}."
        if rest.startswith("attn.qkv."):
            kind = rest.split(".")[-1]
            d = t.shape[0] // 3
            for j, target in enumerate((q, k, v)):
                out[f"{prefix}{target}.{kind}"] = t[j * d:(j + 1) * d].clone()
            continue
        out[prefix + rename_block_param(rest, block, name, "unmapped key")] = t
    return out


def hf_model(spec: ModelSpec, sd):
    """transformers' Dinov2WithRegistersModel (registers) or Dinov2Model, loaded strictly."""
    from transformers import Dinov2Config, Dinov2Model, Dinov2WithRegistersConfig, Dinov2WithRegistersModel

    assert spec.ffn_layer == "mlp", "only GELU-MLP models are run through transformers here"
    common = dict(hidden_size=spec.embed_dim, num_hidden_layers=spec.depth, num_attention_heads=spec.num_heads,
                  image_size=spec.img_size, patch_size=PATCH, layer_norm_eps=1e-6, hidden_act="gelu",
                  mlp_ratio=4, layerscale_value=1.0, qkv_bias=True, attn_implementation="eager")
    if spec.registers:
        model = Dinov2WithRegistersModel(Dinov2WithRegistersConfig(num_register_tokens=spec.registers, **common))
    else:
        model = Dinov2Model(Dinov2Config(**common))
    hf_sd = hub_to_hf(sd, model.state_dict().keys())
    result = model.load_state_dict(hf_sd, strict=True)
    assert not result.missing_keys and not result.unexpected_keys, result
    return model.eval()


# ---------------------------------------------------------------------------------------------
# Running a reference


class Reference:
    """Runs one model the way one reference code does and returns golden arrays by golden key."""

    registers = 0

    def run(self, x: torch.Tensor, masks, keys, intermediate) -> "dict[str, np.ndarray]":
        raise NotImplementedError


def _np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().to(torch.float32).numpy(), dtype="<f4")


class OfficialReference(Reference):
    # the PyPI snapshot returns no x_norm_regtokens; forward() is head(cls), head = Identity
    feature_keys = ("x_norm_clstoken", "x_norm_patchtokens", "x_prenorm")

    def __init__(self, spec, sd):
        self.model = official_model(spec, sd)

    @torch.no_grad()
    def run(self, x, masks, keys, intermediate):
        """forward_features, forward and get_intermediate_layers of an official model (DINOv2's,
        or DINOv3's with its own `feature_keys`)."""
        out = {}
        if any(not k.startswith("intermediate.") for k in keys):
            f = self.model.forward_features(x, masks=masks)
            for k in self.feature_keys:
                out[k] = f[k]
            out["forward"] = self.model(x, masks=masks)
        for i in intermediate:
            assert masks is None, "get_intermediate_layers takes no masks"
            ((patch, cls),) = self.model.get_intermediate_layers(x, n=[i], return_class_token=True, norm=True)
            out[f"intermediate.{i}.patch"] = patch
            out[f"intermediate.{i}.cls"] = cls
        return {k: _np(out[k]) for k in keys}


class HFReference(Reference):
    """transformers' model, outputs named and sliced as the official forward_features would."""

    def __init__(self, spec, sd):
        self.model = hf_model(spec, sd)
        self.registers = spec.registers

    @torch.no_grad()
    def hidden(self, x, masks):
        o = self.model(pixel_values=x, bool_masked_pos=masks, output_hidden_states=True)
        # hidden_states = (embeddings, block 0 output, ..., block depth-1 output), all before the final norm
        assert len(o.hidden_states) == self.model.config.num_hidden_layers + 1
        return o

    @torch.no_grad()
    def run(self, x, masks, keys, intermediate):
        r = self.registers
        out = {}
        if any(not k.startswith("intermediate.") for k in keys):
            o = self.hidden(x, masks)
            last = o.last_hidden_state
            out["x_norm_clstoken"] = last[:, 0]
            out["x_norm_regtokens"] = last[:, 1:1 + r]
            out["x_norm_patchtokens"] = last[:, 1 + r:]
            out["x_prenorm"] = o.hidden_states[-1]
            out["forward"] = o.pooler_output
        if intermediate:
            assert masks is None, "get_intermediate_layers takes no masks"
            hs = self.hidden(x, None).hidden_states
            for i in intermediate:
                normed = self.model.layernorm(hs[i + 1])
                out[f"intermediate.{i}.patch"] = normed[:, 1 + r:]
                out[f"intermediate.{i}.cls"] = normed[:, 0]
        return {k: _np(out[k]) for k in keys}


# ---------------------------------------------------------------------------------------------
# Golden sets: what to write


OUT_SHORT = {
    "x_norm_clstoken": "cls", "x_norm_regtokens": "reg", "x_storage_tokens": "storage",
    "x_norm_patchtokens": "patch", "x_prenorm": "prenorm", "forward": "forward",
}


def short_name(key: str) -> str:
    if key.startswith("intermediate."):
        _, i, part = key.split(".")
        return f"int{i}.{part}"
    return OUT_SHORT[key]


@dataclass
class Case:
    name: str
    shape: tuple  # (B, 3, H, W)
    keys: list  # golden keys, "intermediate.<i>.patch|cls" included
    masked: bool = False
    stored_input: bool = False  # write x.npy instead of naming the synthetic generator

    @property
    def intermediate(self) -> list:
        return sorted({int(k.split(".")[1]) for k in self.keys if k.startswith("intermediate.")})


@dataclass
class SetSpec:
    folder: str
    model: ModelSpec
    interpolation: str  # "official" | "hf"
    cases: list


def case_seed(folder: str, case: str, what: str = "input") -> int:
    """A stable uint32 per (set, case): crc32 of a readable label."""
    return zlib.crc32(f"{folder}/{case}/{what}".encode()) & 0xFFFFFFFF


def seeded_masks(seed: int, batch: int, tokens: int, p: float = 0.3) -> np.ndarray:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, tokens, generator=g) < p).numpy()


SHORT_KEYS = {"cls": "x_norm_clstoken", "reg": "x_norm_regtokens", "patch": "x_norm_patchtokens",
              "prenorm": "x_prenorm", "forward": "forward"}


def _keys(spec: ModelSpec, *names: str) -> list:
    """Golden keys from short names: cls, reg, patch, prenorm, forward, int<i> (patch and cls of
    block i), int<i>.cls, int<i>.patch."""
    keys = []
    for n in names:
        if n.startswith("int"):
            i, _, part = n[3:].partition(".")
            keys += [f"intermediate.{i}.{p}" for p in ((part,) if part else ("patch", "cls"))]
        elif n != "reg" or spec.registers:
            # the official PyPI snapshot has no x_norm_regtokens; for R = 0 it would be an empty (B, 0, D)
            keys.append(SHORT_KEYS[n])
    return keys


# The committed sets must fit a 2.5 MB budget together with the kernels, and the weights alone take
# about 0.9 MB (a 37x37 position table is 175 kB at width 32). So the large inputs (518, 644) keep
# only cls/registers/forward here - the interpolation they exercise is checked position by position
# in Fixtures/kernels/ (46x46 and 37x37 targets) - and intermediate outputs that are bit-identical to
# x_norm_* are stored once (see ArrayWriter). The full-size sets (--full) store everything.
def tiny_sets() -> list:
    sets = []
    for folder in ("tiny-plain", "tiny-reg", "tiny-swiglu"):
        s = tiny_spec(folder)
        cases = [
            Case("small", (2, 3, 28, 42), _keys(s, "cls", "reg", "patch", "prenorm", "forward", "int0", "int1"),
                 stored_input=folder == "tiny-plain"),
            Case("x224", (2, 3, 224, 224), _keys(s, "cls", "reg", "patch", "forward", "int0.cls", "int1")),
            Case("x168x252", (1, 3, 168, 252), _keys(s, "cls", "reg", "patch", "prenorm", "forward", "int0", "int1")),
            Case("x518", (1, 3, 518, 518), _keys(s, "cls", "reg", "forward")),
            Case("x644", (1, 3, 644, 644), _keys(s, "cls", "reg", "forward")),
            Case("masked224", (2, 3, 224, 224), _keys(s, "cls", "reg", "patch", "forward"), masked=True),
        ]
        sets.append(SetSpec(folder, s, "official", cases))
    s = tiny_spec("tiny-plain")
    sets.append(SetSpec("tiny-plain-hf", s, "hf", [
        Case("x224", (1, 3, 224, 224), _keys(s, "cls", "patch", "forward", "int1")),
        Case("x168x252", (1, 3, 168, 252), _keys(s, "cls", "patch", "forward", "int1")),
        Case("x518", (1, 3, 518, 518), _keys(s, "cls", "forward")),
    ]))
    return sets


def full_sets() -> list:
    sets = []
    for name, s in FULL.items():
        every = _keys(s, "cls", "reg", "patch", "prenorm", "forward")
        cases = [
            Case("x224", (2, 3, 224, 224), every + _keys(s, "int0", "int8", "int9", "int10", "int11")),
            Case("x168x252", (1, 3, 168, 252), every + _keys(s, "int5", "int11")),
            Case("x518", (1, 3, 518, 518), every),
            Case("x644", (1, 3, 644, 644), every),
            Case("masked224", (2, 3, 224, 224), every, masked=True),
        ]
        sets.append(SetSpec(name, s, "official", cases))
    return sets


def reference_for(spec: SetSpec, sd) -> Reference:
    if spec.interpolation == "hf":
        assert spec.model.registers == 0
        return HFReference(spec.model, sd)
    if spec.model.registers:
        return HFReference(spec.model, sd)
    return OfficialReference(spec.model, sd)


def case_input(spec: SetSpec, case: Case) -> "tuple[np.ndarray, int]":
    seed = case_seed(spec.folder, case.name)
    return lcg_tensor(seed, case.shape), seed


def case_masks(spec: SetSpec, case: Case):
    if not case.masked:
        return None
    b, _, h, w = case.shape
    return seeded_masks(case_seed(spec.folder, case.name, "masks"), b, (h // PATCH) * (w // PATCH))


def compute_case(spec: SetSpec, ref: Reference, case: Case) -> "dict[str, np.ndarray]":
    x, _ = case_input(spec, case)
    masks = case_masks(spec, case)
    return ref.run(torch.from_numpy(x), None if masks is None else torch.from_numpy(masks), case.keys,
                   case.intermediate)


# ---------------------------------------------------------------------------------------------
# Writing


def save_npy(path: str, arr: np.ndarray) -> None:
    """'<f4' or '|b1', C order, npy format 1.0: what DinoKit's NPY reader accepts."""
    if arr.dtype == np.bool_:
        arr = np.ascontiguousarray(arr, dtype="|b1")
    else:
        arr = np.ascontiguousarray(arr, dtype="<f4")
    with open(path, "wb") as f:
        np.lib.format.write_array(f, arr, version=(1, 0), allow_pickle=False)


class ArrayWriter:
    """Writes arrays into one folder; a bit-identical array already written is named again instead
    of stored twice (forward == x_norm_clstoken, intermediate of the last block == x_norm_*)."""

    def __init__(self, folder: str):
        self.folder = folder
        self.seen = {}

    def write(self, filename: str, arr: np.ndarray) -> str:
        digest = hashlib.sha256(arr.dtype.str.encode() + repr(arr.shape).encode() + arr.tobytes()).hexdigest()
        if digest in self.seen:
            return self.seen[digest]
        save_npy(os.path.join(self.folder, filename), arr)
        self.seen[digest] = filename
        return filename


def save_weights(path: str, sd, num_heads: int) -> None:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in sd.items()}, path, metadata={"num_heads": str(num_heads)})
    os.chmod(path, 0o644)  # safetensors creates it owner-only


def write_json(path: str, obj: dict) -> None:
    """Top-level keys one per line and one case per line: short, and diffs stay readable."""
    lines = []
    for k, v in obj.items():
        if k == "cases":
            body = ",\n".join("  " + json.dumps(c) for c in v)
            lines.append(f' "cases": [\n{body}\n ]')
        else:
            lines.append(f" {json.dumps(k)}: {json.dumps(v)}")
    text = "{\n" + ",\n".join(lines) + "\n}\n"
    assert json.loads(text) == json.loads(json.dumps(obj))
    with open(path, "w") as f:
        f.write(text)


def write_cases(spec, ref, writer, case_input, case_masks, compute_case, log=print, source="") -> list:
    """The manifest's cases of one set, every input, mask and output written by `writer`: stored
    inputs as .npy, others as synthetic LCG descriptions. The three functions are the family's own
    (this module's for DINOv2, goldens_v3's for DINOv3)."""
    cases = []
    for case in spec.cases:
        x, seed = case_input(spec, case)
        entry = {"name": case.name}
        if case.stored_input:
            entry["input"] = writer.write(f"{case.name}.npy", x)
        else:
            entry["input"] = {"synthetic": "lcg", "seed": seed, "shape": list(case.shape)}
        masks = case_masks(spec, case)
        if masks is not None:
            entry["masks"] = writer.write(f"{case.name}.masks.npy", masks)
        outputs = compute_case(spec, ref, case)
        entry["outputs"] = {k: writer.write(f"{case.name}.{short_name(k)}.npy", v) for k, v in outputs.items()}
        cases.append(entry)
        log(f"  {spec.folder}/{case.name}: {list(case.shape)}, {len(outputs)} outputs{source}")
    return cases


def write_set(spec: SetSpec, folder: str, log=print) -> dict:
    """Writes one golden set into `folder` (created; must not exist). Returns the manifest."""
    os.makedirs(folder)
    sd = state_dict_for(spec.model)
    # every set carries its weights: manifest paths stay inside the set's folder (DinoKit refuses
    # '..' and links leading out, as for ONNX external data)
    weights = "model.safetensors"
    save_weights(os.path.join(folder, weights), sd, spec.model.num_heads)
    ref = reference_for(spec, sd)
    cases = write_cases(spec, ref, ArrayWriter(folder), case_input, case_masks, compute_case, log)
    manifest = OrderedDict(
        format=FORMAT, model=spec.model.name, weights=weights, interpolation=spec.interpolation,
        num_heads=spec.model.num_heads, cases=cases,
    )
    write_json(os.path.join(folder, "manifest.json"), manifest)
    return manifest


def replace_dir(tmp: str, final: str) -> None:
    if os.path.exists(final):
        shutil.rmtree(final)
    os.rename(tmp, final)


def write_sets(specs, root: str, log=print, write=None) -> None:
    """Each set written into `<folder>.tmp` and then swapped in whole; `write(spec, folder, log)`
    is the family's set writer (this module's `write_set` by default)."""
    write = write or write_set
    os.makedirs(root, exist_ok=True)
    for spec in specs:
        final = os.path.join(root, spec.folder)
        tmp = final + ".tmp"
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
        write(spec, tmp, log)
        replace_dir(tmp, final)


# ---------------------------------------------------------------------------------------------
# Kernel references

INTERP_TARGETS = [(16, 16), (12, 18), (37, 37), (46, 46), (5, 7), (40, 30)]
# grid side -> kinds: the 16x16 grid (a 224-trained table) only meets the official kernels;
# HF's plain size-based kernel is checked on the hub-sized 37x37 grid.
INTERP_GRIDS = {37: ("offset", "size_aa", "size"), 16: ("offset", "size_aa")}


def interpolate_case(grid: torch.Tensor, h: int, w: int, kind: str):
    """The three ways the codes resample the position grid, with exactly their F.interpolate calls.
    kind "offset": official non-register models; "size_aa": official register models and HF
    registers; "size": HF Dinov2Model."""
    import torch.nn.functional as F

    m = grid.shape[-1]
    if kind == "offset":
        scale = ((h + 0.1) / m, (w + 0.1) / m)
        out = F.interpolate(grid, scale_factor=scale, mode="bicubic", align_corners=False, antialias=False)
        params = {"mode": "bicubic", "scale_factor": list(scale), "align_corners": False, "antialias": False,
                  "offset": 0.1}
    elif kind == "size_aa":
        out = F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=False, antialias=True)
        params = {"mode": "bicubic", "size": [h, w], "align_corners": False, "antialias": True}
    else:
        out = F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=False, antialias=False)
        params = {"mode": "bicubic", "size": [h, w], "align_corners": False, "antialias": False}
    assert tuple(out.shape[-2:]) == (h, w), (kind, m, h, w, out.shape)
    params["output_shape"] = list(out.shape)
    return out, params


def write_kernels(folder: str, log=print) -> dict:
    """Small op-level references: interpolation, layer norm, GELU, SiLU, softmax. Inputs are stored
    (the grids also name their synthetic seed)."""
    import torch.nn.functional as F

    os.makedirs(folder)
    cases = []

    def add(name, op, params, inputs, out):
        entry = OrderedDict(name=name, op=op, params=params)
        entry.update(inputs)
        entry["output"] = f"{name}.out.npy"
        save_npy(os.path.join(folder, entry["output"]), _np(out))
        cases.append(entry)

    for m, kinds in INTERP_GRIDS.items():
        seed = case_seed("kernels", f"grid{m}")
        grid_np = lcg_tensor(seed, (1, 3, m, m))
        grid_file = f"grid{m}.npy"
        save_npy(os.path.join(folder, grid_file), grid_np)
        grid = torch.from_numpy(grid_np)
        for kind in kinds:
            for h, w in INTERP_TARGETS:
                out, params = interpolate_case(grid, h, w, kind)
                params = OrderedDict(kind=kind, **params)
                add(f"interp.{kind}.g{m}.{h}x{w}", "interpolate", params,
                    {"input": grid_file, "input_synthetic": {"synthetic": "lcg", "seed": seed,
                                                             "shape": [1, 3, m, m]}}, out)

    g = torch.Generator().manual_seed(1234)
    ln_cases = [
        ("layer_norm.d32", torch.randn(6, 32, generator=g) * 2 + 0.5),
        ("layer_norm.d384", torch.randn(4, 384, generator=g) * 3 - 1),
        # a large mean: a one-pass E[x^2] - E[x]^2 variance loses the digits this case checks
        ("layer_norm.offset", torch.randn(4, 64, generator=g) + 50),
    ]
    for name, x in ln_cases:
        d = x.shape[-1]
        weight = 1 + 0.1 * torch.randn(d, generator=g)
        bias = 0.1 * torch.randn(d, generator=g)
        files = {"input": f"{name}.x.npy", "weight": f"{name}.weight.npy", "bias": f"{name}.bias.npy"}
        for key, t in (("input", x), ("weight", weight), ("bias", bias)):
            save_npy(os.path.join(folder, files[key]), _np(t))
        out = F.layer_norm(x, (d,), weight, bias, eps=1e-6)
        add(name, "layer_norm", {"normalized_shape": [d], "eps": 1e-6}, files, out)

    act_inputs = [
        ("lcg", torch.from_numpy(lcg_tensor(case_seed("kernels", "act"), (4, 64)) * np.float32(4))),  # [-8, 8)
        ("randn", torch.randn(8, 64, generator=g) * 3),
    ]
    for tag, x in act_inputs:
        xfile = f"act.{tag}.x.npy"
        save_npy(os.path.join(folder, xfile), _np(x))
        add(f"gelu.{tag}", "gelu", {"approximate": "none"}, {"input": xfile}, F.gelu(x, approximate="none"))
        add(f"silu.{tag}", "silu", {}, {"input": xfile}, F.silu(x))

    sm_inputs = [
        ("softmax.w37", torch.randn(4, 37, generator=g) * 4),
        # large logits: exp overflows unless the row maximum is subtracted first
        ("softmax.large", torch.randn(3, 261, generator=g) * 8 + 100),
    ]
    for name, x in sm_inputs:
        xfile = f"{name}.x.npy"
        save_npy(os.path.join(folder, xfile), _np(x))
        add(name, "softmax", {"dim": -1}, {"input": xfile}, torch.softmax(x, dim=-1))

    manifest = OrderedDict(format=KERNELS_FORMAT, cases=cases)
    write_json(os.path.join(folder, "kernels.json"), manifest)
    log(f"  kernels: {len(cases)} cases")
    return manifest


def write_kernels_into(final: str, log=print) -> None:
    """Rebuilds the kernel files in `final`, keeping its README.md."""
    tmp = final + ".tmp"
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    write_kernels(tmp, log)
    readme = os.path.join(final, "README.md")
    if os.path.exists(readme):
        shutil.copy2(readme, os.path.join(tmp, "README.md"))
    replace_dir(tmp, final)
