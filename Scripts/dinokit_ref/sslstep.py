"""DINOv2 SSL training debug states (`dinokit-sslstep/1`), made by the official code.

What runs (PyPI `dinov2` 0.0.1.dev2, the package in the project's virtualenv):
- backbones: `dinov2.models.vision_transformer.DinoVisionTransformer` built as `vit_*` builds it
  (`NestedTensorBlock` with `MemEffAttention`, which falls back to plain attention without xFormers);
  register models use `RegisterVisionTransformer` below, a minimal subclass adding what the PyPI
  snapshot lacks (upstream HEAD's register tokens and configurable interpolation);
- heads: `dinov2.layers.DINOHead` (weight-normed last layer with `weight_g`, `weight_v`);
- losses: `dinov2.loss.DINOLoss` (softmax centering with its lazy center update, Sinkhorn-Knopp),
  `iBOTPatchLoss`, `KoLeoLoss`, called exactly as `dinov2/train/ssl_meta_arch.py`
  `SSLMetaArch.forward_backward` calls them (mirrored in `SSLStep.forward_backward`: SSLMetaArch
  itself needs FSDP, CUDA and xFormers);
- masks: `dinov2.data.MaskingGenerator` + `dinov2.data.collate_data_and_cast` with train.py's
  arguments, seeded through Python's `random` as the official loader is;
- optimiser: `torch.optim.AdamW` over `dinov2.utils.param_groups.get_params_groups_with_decay` +
  `fuse_params_groups` per student sub-module, `apply_optim_scheduler` semantics of train.py,
  per-sub-module `clip_grad_norm_`, teacher EMA as `SSLMetaArch.update_teacher`.

torch.distributed is initialised as a one-process gloo group, so every all-reduce in the loss
modules runs and is the identity (world size 1); iBOT's Sinkhorn calls `dist.all_reduce`
unconditionally and would fail otherwise. Everything runs in fp32; states are made on one CPU thread.

The deviations from the official code are listed in Fixtures/sslstep/README.md.
"""
import io
import json
import math
import os
import random
import time
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from functools import partial
from typing import Optional

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from . import compat  # noqa: F401 - dinov2.data imports torchvision

FORMAT = "dinokit-sslstep/1"
PATCH = 14
N_GLOBAL = 2  # ssl_meta_arch asserts exactly two global crops


# ---------------------------------------------------------------------------------------------
# Presets: one per debug state


@dataclass(frozen=True)
class HeadSpec:
    out_dim: int
    hidden_dim: int
    bottleneck_dim: int
    nlayers: int = 3


@dataclass(frozen=True)
class Preset:
    name: str
    embed_dim: int
    depth: int
    num_heads: int
    global_size: int  # global crop side; also the model's img_size unless img_size is set
    local_size: int
    n_local_crops: int
    batch_size: int
    dino_head: HeadSpec
    ibot_head: Optional[HeadSpec]  # None: iBOT shares the DINO head
    centering: str  # "centering" | "sinkhorn_knopp"
    ffn: str = "mlp"  # "mlp" | "swiglu" (DINOv2's SwiGLUFFNFused, hidden rounded to a multiple of 8)
    registers: int = 0
    interpolate_offset: float = 0.1
    interpolate_antialias: bool = False
    layerscale_init: float = 1e-5  # the training constructor value; the state's gammas are random
    teacher_temp: float = 0.07
    student_temp: float = 0.1
    center_momentum: float = 0.9
    dino_weight: float = 1.0
    ibot_weight: float = 1.0
    koleo_weight: float = 0.1
    lr: float = 2e-3
    last_layer_lr: float = 2e-3
    weight_decay: float = 0.04
    layerwise_decay: float = 0.9
    patch_embed_lr_mult: float = 0.2
    clip_grad: float = 3.0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    teacher_momentum: float = 0.992
    steps: int = 3
    # How the state was made (not part of config.json; see the README)
    seed: int = 0
    resumed: bool = False  # teacher != student and non-zero centers, as after loading a checkpoint
    # The official MaskingGenerator's default min_num_patches=4 exceeds what a 2x2 or 3x3 grid can
    # take (train.py's max_num_patches is 2 or 3 there) and the default ratios (0.1, 0.5) give
    # empty masks on 4 or 9 patches; tiny states use 1 and (0.3, 0.7).
    mask_ratio_min_max: tuple = (0.3, 0.7)
    mask_sample_probability: float = 0.5
    mask_min_patches: int = 1
    randomize: bool = True  # seeded non-trivial weights instead of the training initialisation
    # The model's img_size (position grid img_size/14) when it differs from the global crops, as
    # when training continues from a hub checkpoint (37x37 table, 224 crops): then the global crops
    # are resampled too. None: img_size = global_size, the table is used as stored.
    img_size: Optional[int] = None

    @property
    def model_img_size(self) -> int:
        return self.global_size if self.img_size is None else self.img_size


PRESETS = {
    # 1. default config semantics: centering, shared iBOT head, GELU MLP, layer-wise decay 0.9;
    #    resumed (teacher != student, non-zero centers); batch 3 so KoLeo's nearest neighbour is a choice
    "centering-shared": Preset(
        name="centering-shared", embed_dim=12, depth=2, num_heads=2, global_size=28, local_size=14,
        n_local_crops=2, batch_size=3, dino_head=HeadSpec(32, 16, 8), ibot_head=None, centering="centering",
        teacher_temp=0.07, lr=2e-3, last_layer_lr=1e-3, teacher_momentum=0.9, seed=1, resumed=True),
    # 2. vitl14/vitg14 semantics: Sinkhorn-Knopp, separate iBOT head, frozen last layer (lr 0), no
    #    layer-wise decay; 3x3 global grid, 2x2 local grid (a resampling that is not symmetric in
    #    H/W), head dim 6, one local crop (n_terms = 2 + 2)
    "sinkhorn-separate": Preset(
        name="sinkhorn-separate", embed_dim=12, depth=2, num_heads=2, global_size=42, local_size=28,
        n_local_crops=1, batch_size=2, dino_head=HeadSpec(32, 16, 8), ibot_head=HeadSpec(48, 16, 8),
        centering="sinkhorn_knopp", teacher_temp=0.05, lr=3e-3, last_layer_lr=0.0, layerwise_decay=1.0,
        teacher_momentum=0.994, seed=2, resumed=True),
    # 3. 4 register tokens (hub register semantics: offset 0, antialiased size-based interpolation),
    #    centering from a fresh start (teacher = student, zero centers), three local crops, head dim 4
    "registers-centering": Preset(
        name="registers-centering", embed_dim=12, depth=2, num_heads=3, global_size=28, local_size=14,
        n_local_crops=3, batch_size=2, dino_head=HeadSpec(32, 16, 8), ibot_head=None, centering="centering",
        registers=4, interpolate_offset=0.0, interpolate_antialias=True, teacher_temp=0.04,
        lr=2e-3, last_layer_lr=2e-3, layerwise_decay=0.8, teacher_momentum=0.95, seed=3, resumed=False),
    # 4. SwiGLU FFN with Sinkhorn-Knopp and a shared head, non-default loss weights, fresh start
    #    (seed 12: no KoLeo term is near 0, where a relative tolerance would be fragile)
    "swiglu-sinkhorn": Preset(
        name="swiglu-sinkhorn", embed_dim=12, depth=2, num_heads=2, global_size=28, local_size=14,
        n_local_crops=2, batch_size=2, dino_head=HeadSpec(32, 16, 8), ibot_head=None,
        centering="sinkhorn_knopp", ffn="swiglu", teacher_temp=0.06, ibot_weight=0.5, koleo_weight=0.2,
        lr=2e-3, last_layer_lr=4e-3, layerwise_decay=0.9, teacher_momentum=0.98, seed=12, resumed=False),
    # 5. global crops smaller than img_size (the hub case: 37x37 table, 16x16 global grid): plain
    #    model, offset 0.1 scale-factor interpolation; 5x5 table -> 4x4 global and 2x2 local grids
    #    (seed 27: no KoLeo term is near 0)
    "interp-global-offset": Preset(
        name="interp-global-offset", embed_dim=12, depth=2, num_heads=2, img_size=70, global_size=56,
        local_size=28, n_local_crops=2, batch_size=2, dino_head=HeadSpec(32, 16, 8), ibot_head=None,
        centering="centering", teacher_temp=0.07, lr=2e-3, last_layer_lr=1e-3, teacher_momentum=0.9,
        seed=27, resumed=True),
    # 6. global crops larger than img_size: 4 registers, hub register semantics (offset 0, size-based
    #    antialiased bicubic); 3x3 table upsampled to the 4x4 global grid (AA's upsampling kernel,
    #    A = -0.5) and downsampled to the 2x2 local grid
    "interp-global-registers": Preset(
        name="interp-global-registers", embed_dim=12, depth=2, num_heads=3, img_size=42, global_size=56,
        local_size=28, n_local_crops=2, batch_size=2, dino_head=HeadSpec(32, 16, 8), ibot_head=None,
        centering="sinkhorn_knopp", registers=4, interpolate_offset=0.0, interpolate_antialias=True,
        teacher_temp=0.05, lr=2e-3, last_layer_lr=2e-3, layerwise_decay=0.8, teacher_momentum=0.95,
        seed=22, resumed=True),
}

# ViT-S/14 shapes for benchmarks (git-ignored output): default-config head sizes, centering.
BENCH_PRESET = Preset(
    name="vits14-bench", embed_dim=384, depth=12, num_heads=6, global_size=224, local_size=98,
    n_local_crops=8, batch_size=2, dino_head=HeadSpec(65536, 2048, 256), ibot_head=None,
    centering="centering", teacher_temp=0.07, lr=1e-3, last_layer_lr=1e-3, teacher_momentum=0.992,
    steps=3, seed=5, resumed=True, mask_ratio_min_max=(0.1, 0.5), mask_min_patches=4)


def config_json(p: Preset) -> dict:
    """config.json exactly as issue 8 specifies it (key order included)."""
    def head(h):
        return None if h is None else {"out_dim": h.out_dim, "hidden_dim": h.hidden_dim,
                                       "bottleneck_dim": h.bottleneck_dim, "nlayers": h.nlayers}

    return {
        "format": FORMAT,
        "backbone": {"embed_dim": p.embed_dim, "depth": p.depth, "num_heads": p.num_heads, "patch_size": PATCH,
                     "img_size": p.model_img_size, "num_register_tokens": p.registers, "ffn": p.ffn,
                     "layerscale_init": p.layerscale_init, "interpolate_offset": p.interpolate_offset,
                     "interpolate_antialias": p.interpolate_antialias},
        "dino_head": head(p.dino_head),
        "ibot_head": head(p.ibot_head),
        "loss": {"student_temp": p.student_temp, "teacher_temp": p.teacher_temp, "centering": p.centering,
                 "center_momentum": p.center_momentum, "dino_weight": p.dino_weight,
                 "ibot_weight": p.ibot_weight, "koleo_weight": p.koleo_weight},
        "optim": {"lr": p.lr, "last_layer_lr": p.last_layer_lr, "weight_decay": p.weight_decay,
                  "layerwise_decay": p.layerwise_decay, "patch_embed_lr_mult": p.patch_embed_lr_mult,
                  "clip_grad": p.clip_grad, "beta1": p.beta1, "beta2": p.beta2, "eps": p.eps},
        "teacher_momentum": p.teacher_momentum,
        "steps": p.steps,
        "n_global_crops": N_GLOBAL,
        "n_local_crops": p.n_local_crops,
        "batch_size": p.batch_size,
    }


# ---------------------------------------------------------------------------------------------
# Process setup


def make_deterministic(threads: int = 1) -> None:
    """One thread and deterministic kernels: reruns on one machine give identical bytes."""
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)


def ensure_process_group() -> None:
    """World size 1: all-reduces become the identity. iBOTPatchLoss.sinkhorn_knopp_teacher calls
    dist.all_reduce without checking is_initialized, so a group must exist."""
    if not dist.is_initialized():
        dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)


# ---------------------------------------------------------------------------------------------
# Models


def _register_model_class():
    from dinov2.models.vision_transformer import DinoVisionTransformer

    class RegisterVisionTransformer(DinoVisionTransformer):
        """The PyPI class plus what upstream HEAD (facebookresearch/dinov2 b8931f7) added in
        `9c7e324`/`e1277af`: `register_tokens` inserted after the position embedding
        (dinov2-spec.md §1.5) and interpolation with a configurable offset/antialias (§1.6).
        Only the tensor path (no list input) is needed here."""

        def __init__(self, *, num_register_tokens, interpolate_offset, interpolate_antialias, **kw):
            super().__init__(**kw)
            self.num_register_tokens = num_register_tokens
            self.interpolate_offset = interpolate_offset
            self.interpolate_antialias = interpolate_antialias
            self.register_tokens = (nn.Parameter(torch.zeros(1, num_register_tokens, self.embed_dim))
                                    if num_register_tokens else None)
            if self.register_tokens is not None:
                nn.init.normal_(self.register_tokens, std=1e-6)

        def interpolate_pos_encoding(self, x, w, h):
            previous_dtype = x.dtype
            npatch = x.shape[1] - 1
            n = self.pos_embed.shape[1] - 1
            if npatch == n and w == h:
                return self.pos_embed
            pos_embed = self.pos_embed.float()
            cls_pos, grid = pos_embed[:, 0], pos_embed[:, 1:]
            dim = x.shape[-1]
            w0, h0 = w // self.patch_size, h // self.patch_size
            m = int(math.sqrt(n))
            assert m * m == n
            if self.interpolate_offset:
                kwargs = {"scale_factor": (float(w0 + self.interpolate_offset) / m,
                                           float(h0 + self.interpolate_offset) / m)}
            else:
                kwargs = {"size": (w0, h0)}
            grid = nn.functional.interpolate(grid.reshape(1, m, m, dim).permute(0, 3, 1, 2), mode="bicubic",
                                             antialias=self.interpolate_antialias, **kwargs)
            assert (w0, h0) == grid.shape[-2:]
            grid = grid.permute(0, 2, 3, 1).view(1, -1, dim)
            return torch.cat((cls_pos.unsqueeze(0), grid), dim=1).to(previous_dtype)

        def prepare_tokens_with_masks(self, x, masks=None):
            x = super().prepare_tokens_with_masks(x, masks)
            if self.register_tokens is not None:
                x = torch.cat((x[:, :1], self.register_tokens.expand(x.shape[0], -1, -1), x[:, 1:]), dim=1)
            return x

        def forward_features(self, x, masks=None):
            assert not isinstance(x, list), "run global and local crops separately (no xFormers)"
            x = self.prepare_tokens_with_masks(x, masks)
            for blk in self.blocks:
                x = blk(x)
            x_norm = self.norm(x)
            r = self.num_register_tokens
            return {"x_norm_clstoken": x_norm[:, 0], "x_norm_regtokens": x_norm[:, 1:r + 1],
                    "x_norm_patchtokens": x_norm[:, r + 1:], "x_prenorm": x, "masks": masks}

    return RegisterVisionTransformer


def build_backbone(p: Preset) -> nn.Module:
    """As dinov2.models.build_model with cfg.student (block_chunks 0, biases on, drop path 0):
    vit_* pass `block_fn=partial(Block, attn_class=MemEffAttention)`."""
    from dinov2.layers import MemEffAttention, NestedTensorBlock
    from dinov2.models.vision_transformer import DinoVisionTransformer

    kw = dict(img_size=p.model_img_size, patch_size=PATCH, embed_dim=p.embed_dim, depth=p.depth,
              num_heads=p.num_heads, mlp_ratio=4, init_values=p.layerscale_init,
              ffn_layer={"mlp": "mlp", "swiglu": "swiglufused"}[p.ffn], block_chunks=0,
              qkv_bias=True, proj_bias=True, ffn_bias=True, drop_path_rate=0.0, drop_path_uniform=True,
              block_fn=partial(NestedTensorBlock, attn_class=MemEffAttention))
    official_interp = p.interpolate_offset == 0.1 and not p.interpolate_antialias
    if p.registers == 0 and official_interp:
        return DinoVisionTransformer(**kw)
    return _register_model_class()(num_register_tokens=p.registers, interpolate_offset=p.interpolate_offset,
                                   interpolate_antialias=p.interpolate_antialias, **kw)


def build_head(h: HeadSpec, in_dim: int) -> nn.Module:
    from dinov2.layers import DINOHead

    return DINOHead(in_dim=in_dim, out_dim=h.out_dim, hidden_dim=h.hidden_dim, bottleneck_dim=h.bottleneck_dim,
                    nlayers=h.nlayers)


# ---------------------------------------------------------------------------------------------
# Seeded weights


def _randomize_backbone_(module: nn.Module, g: torch.Generator) -> None:
    """The recipe of models.randomize_ (no zero bias, LayerScale not 1e-5, mask token not 0)."""
    with torch.no_grad():
        for name, t in module.named_parameters():
            if name.endswith(("norm1.weight", "norm2.weight", "norm.weight")):
                v = 1.0 + 0.1 * torch.randn(t.shape, generator=g)
            elif ".gamma" in name:
                v = 0.5 + 0.3 * torch.rand(t.shape, generator=g)
            elif name.endswith(".weight") and t.dim() >= 2:
                v = torch.randn(t.shape, generator=g) / math.sqrt(t[0].numel())
            else:  # biases, tokens, position table
                v = 0.1 * torch.randn(t.shape, generator=g)
            t.copy_(v)


def _randomize_head_(module: nn.Module, g: torch.Generator) -> None:
    """MLP as the backbone; weight_g away from its initial 1 (it is trained in DINOv2); weight_v
    of any scale (it is normalised per row)."""
    with torch.no_grad():
        for name, t in module.named_parameters():
            if name == "last_layer.weight_g":
                v = 0.6 + 0.8 * torch.rand(t.shape, generator=g)
            elif name == "last_layer.weight_v":
                v = torch.randn(t.shape, generator=g)
            elif name.endswith(".weight"):
                v = torch.randn(t.shape, generator=g) / math.sqrt(t.shape[1])
            else:
                v = 0.1 * torch.randn(t.shape, generator=g)
            t.copy_(v)


def _perturb_(module: nn.Module, g: torch.Generator, scale: float = 0.1) -> None:
    """A teacher that has drifted from its student: each tensor plus scale·rms·noise."""
    with torch.no_grad():
        for t in module.parameters():
            rms = t.pow(2).mean().sqrt().clamp(min=1e-3)
            t.add_(scale * rms * torch.randn(t.shape, generator=g))


# ---------------------------------------------------------------------------------------------
# The SSL step


class SSLStep:
    """Student, teacher, loss modules and optimiser of SSLMetaArch for one process, fp32."""

    def __init__(self, p: Preset):
        from dinov2.loss import DINOLoss, KoLeoLoss, iBOTPatchLoss

        self.p = p
        ensure_process_group()
        student, teacher = OrderedDict(), OrderedDict()
        student["backbone"], teacher["backbone"] = build_backbone(p), build_backbone(p)
        student["dino_head"] = build_head(p.dino_head, p.embed_dim)
        teacher["dino_head"] = build_head(p.dino_head, p.embed_dim)
        if p.ibot_head is not None:
            student["ibot_head"] = build_head(p.ibot_head, p.embed_dim)
            teacher["ibot_head"] = build_head(p.ibot_head, p.embed_dim)
        self.student = nn.ModuleDict(student)
        self.teacher = nn.ModuleDict(teacher)
        for t in self.teacher.parameters():
            t.requires_grad = False
        self.ibot_separate_head = p.ibot_head is not None
        ibot_k = p.ibot_head.out_dim if self.ibot_separate_head else p.dino_head.out_dim
        self.dino_loss = DINOLoss(p.dino_head.out_dim, student_temp=p.student_temp,
                                  center_momentum=p.center_momentum)
        self.ibot_patch_loss = iBOTPatchLoss(ibot_k, student_temp=p.student_temp,
                                             center_momentum=p.center_momentum)
        self.koleo_loss = KoLeoLoss()
        self.do_dino, self.do_koleo, self.do_ibot = p.dino_weight > 0, p.koleo_weight > 0, p.ibot_weight > 0
        self.student.train()
        self.teacher.eval()  # SSLMetaArch.train() keeps the teacher in eval mode
        self.optimizer = None
        self.marks = None  # a list to collect (phase, perf_counter) marks for benchmarks

    def _mark(self, phase: str) -> None:
        if self.marks is not None:
            self.marks.append((phase, time.perf_counter()))

    # -- weights -------------------------------------------------------------------------------

    def init_weights(self) -> None:
        p = self.p
        g = torch.Generator().manual_seed(1000 + p.seed)
        if p.randomize:
            _randomize_backbone_(self.student["backbone"], g)
            for k in self.student.keys():
                if k != "backbone":
                    _randomize_head_(self.student[k], g)
        # prepare_for_distributed_training: the teacher starts as a copy of the student
        for k in self.student.keys():
            self.teacher[k].load_state_dict(self.student[k].state_dict())
        if p.resumed:
            for k in self.teacher.keys():
                _perturb_(self.teacher[k], g)
            if p.centering == "centering":
                with torch.no_grad():
                    self.dino_loss.center.copy_(0.2 * torch.randn(self.dino_loss.center.shape, generator=g))
                    self.ibot_patch_loss.center.copy_(
                        0.2 * torch.randn(self.ibot_patch_loss.center.shape, generator=g))

    def state_tensors(self) -> "OrderedDict[str, torch.Tensor]":
        """The training-checkpoint layout: student.*, teacher.*, dino_loss.center,
        ibot_patch_loss.center."""
        out = OrderedDict()
        for side, mods in (("student", self.student), ("teacher", self.teacher)):
            for k, m in mods.items():
                for name, t in m.named_parameters():
                    out[f"{side}.{k}.{name}"] = t.detach().clone().contiguous()
        out["dino_loss.center"] = self.dino_loss.center.detach().clone().contiguous()
        out["ibot_patch_loss.center"] = self.ibot_patch_loss.center.detach().clone().contiguous()
        return out

    def student_grads(self) -> "OrderedDict[str, torch.Tensor]":
        out = OrderedDict()
        for k, m in self.student.items():
            for name, t in m.named_parameters():
                assert t.grad is not None, f"no gradient for student.{k}.{name}"
                out[f"student.{k}.{name}"] = t.grad.detach().clone().contiguous()
        return out

    # -- optimiser (train.py L61-62, L114-120; ssl_meta_arch.py get_params_groups) ----------------

    def params_groups(self) -> list:
        from dinov2.utils.param_groups import fuse_params_groups, get_params_groups_with_decay

        groups = []
        for k, m in self.student.items():
            per_param = get_params_groups_with_decay(model=m, lr_decay_rate=self.p.layerwise_decay,
                                                     patch_embed_lr_mult=self.p.patch_embed_lr_mult)
            for d in per_param:
                # Upstream HEAD (`ad5a262`) puts register_tokens in layer 0 like cls_token; the
                # PyPI snapshot predates registers and would give them the final norm's multiplier.
                if k == "backbone" and "register_tokens" in d["name"]:
                    d["lr_multiplier"] = self.p.layerwise_decay ** (len(m.blocks) + 1)
            fused = list(fuse_params_groups(per_param))
            for grp in fused:
                grp["foreach"] = True
            groups += fused
        return groups

    def build_optimizer(self) -> None:
        p = self.p
        self.optimizer = torch.optim.AdamW(self.params_groups(), betas=(p.beta1, p.beta2), eps=p.eps)

    def apply_optim_scheduler(self) -> None:
        """train.py apply_optim_scheduler with constant schedules (one state, one value each)."""
        p = self.p
        for grp in self.optimizer.param_groups:
            grp["weight_decay"] = p.weight_decay * grp["wd_multiplier"]
            grp["lr"] = (p.last_layer_lr if grp["is_last_layer"] else p.lr) * grp["lr_multiplier"]

    # -- forward/backward (ssl_meta_arch.py SSLMetaArch.forward_backward) -------------------------

    def forward_backward(self, batch: dict, teacher_temp: float) -> "OrderedDict[str, torch.Tensor]":
        """SSLMetaArch.forward_backward with world size 1, fp32, no grad scaler. Returns the loss
        terms as they are added to the accumulator (weighted; KoLeo not halved, iBOT ×2×½), and
        the total; the total is back-propagated."""
        p = self.p
        n_global_crops = N_GLOBAL
        n_local_crops = p.n_local_crops
        global_crops = batch["collated_global_crops"]
        local_crops = batch["collated_local_crops"]
        masks = batch["collated_masks"]
        mask_indices_list = batch["mask_indices_list"]
        n_masked_patches_tensor = batch["n_masked_patches"].clone()  # all_reduce works in place
        n_masked_patches = mask_indices_list.shape[0]
        upperbound = batch["upperbound"]
        masks_weight = batch["masks_weight"]

        n_local_crops_loss_terms = max(n_local_crops * n_global_crops, 1)
        n_global_crops_loss_terms = (n_global_crops - 1) * n_global_crops
        n_terms = n_global_crops_loss_terms + n_local_crops_loss_terms
        ibot_loss_scale = 1.0 / n_global_crops
        do_ibot = self.do_ibot

        @torch.no_grad()
        def teacher_output():
            out = self.teacher["backbone"](global_crops, is_training=True)
            cls = out["x_norm_clstoken"].chunk(n_global_crops)
            cls = torch.cat((cls[1], cls[0]))  # crop 2's targets first: A is matched with B
            patch = out["x_norm_patchtokens"]
            dim = patch.shape[-1]
            n_cls = cls.shape[0]
            masked_after_head = None
            if do_ibot and not self.ibot_separate_head:
                buf = patch.new_zeros(upperbound + n_cls, dim)
                buf[:n_cls].copy_(cls)
                torch.index_select(patch.flatten(0, 1), dim=0, index=mask_indices_list,
                                   out=buf[n_cls:n_cls + n_masked_patches])
                after = self.teacher["dino_head"](buf)
                cls_after_head = after[:n_cls]
                masked_after_head = after[n_cls:n_cls + n_masked_patches]
            elif do_ibot:
                buf = patch.new_zeros(upperbound, dim)
                torch.index_select(patch.flatten(0, 1), dim=0, index=mask_indices_list,
                                   out=buf[:n_masked_patches])
                cls_after_head = self.teacher["dino_head"](cls)
                masked_after_head = self.teacher["ibot_head"](buf)[:n_masked_patches]
            else:
                cls_after_head = self.teacher["dino_head"](cls)

            ibot_targets = None
            if p.centering == "centering":
                dino_targets = self.dino_loss.softmax_center_teacher(cls_after_head, teacher_temp=teacher_temp)
                dino_targets = dino_targets.view(n_global_crops, -1, *cls_after_head.shape[1:])
                self.dino_loss.update_center(cls_after_head)
                if do_ibot:
                    masked_after_head = masked_after_head.unsqueeze(0)
                    ibot_targets = self.ibot_patch_loss.softmax_center_teacher(
                        masked_after_head[:, :n_masked_patches], teacher_temp=teacher_temp).squeeze(0)
                    self.ibot_patch_loss.update_center(masked_after_head[:n_masked_patches])
            elif p.centering == "sinkhorn_knopp":
                dino_targets = self.dino_loss.sinkhorn_knopp_teacher(cls_after_head, teacher_temp=teacher_temp)
                dino_targets = dino_targets.view(n_global_crops, -1, *cls_after_head.shape[1:])
                if do_ibot:
                    ibot_targets = self.ibot_patch_loss.sinkhorn_knopp_teacher(
                        masked_after_head, teacher_temp=teacher_temp, n_masked_patches_tensor=n_masked_patches_tensor)
            else:
                raise NotImplementedError(p.centering)
            return dino_targets, ibot_targets

        dino_targets, ibot_targets = teacher_output()
        self._mark("teacher")

        # Student. The official call is backbone([global, local], masks=[masks, None]), which runs
        # both lists through the blocks jointly with xFormers' block-diagonal attention; that is
        # the same function as two separate passes (attention never mixes images).
        backbone = self.student["backbone"]
        s_global = backbone(global_crops, masks=masks, is_training=True)
        s_local = backbone(local_crops, masks=None, is_training=True)

        head_inputs = [s_local["x_norm_clstoken"].unsqueeze(0), s_global["x_norm_clstoken"].unsqueeze(0)]
        if do_ibot:
            dim = s_global["x_norm_clstoken"].shape[-1]
            patch = s_global["x_norm_patchtokens"]
            buf = patch.new_zeros(upperbound, dim)
            buf[:n_masked_patches].copy_(torch.index_select(patch.flatten(0, 1), dim=0, index=mask_indices_list))
            if not self.ibot_separate_head:
                head_inputs.append(buf.unsqueeze(0))
            else:
                s_masked_after_head = self.student["ibot_head"](buf)[:n_masked_patches]

        # fmha.BlockDiagonalMask.from_tensor_list + split: one head pass over the concatenation
        sizes = [t.shape[1] for t in head_inputs]
        outputs = list(torch.split(self.student["dino_head"](torch.cat(head_inputs, dim=1)), sizes, dim=1))
        s_local_after_head = outputs.pop(0).squeeze(0)
        s_global_after_head = outputs.pop(0).squeeze(0)
        if do_ibot and not self.ibot_separate_head:
            s_masked_after_head = outputs.pop(0).squeeze(0)[:n_masked_patches]

        terms = OrderedDict()
        accumulator = 0
        if n_local_crops > 0:
            dino_local = self.dino_loss(student_output_list=s_local_after_head.chunk(n_local_crops),
                                        teacher_out_softmaxed_centered_list=dino_targets) / n_terms
            terms["dino_local"] = p.dino_weight * dino_local
            accumulator += terms["dino_local"]
        loss_scales = 2
        if self.do_dino:
            dino_global = (self.dino_loss(student_output_list=[s_global_after_head],
                                          teacher_out_softmaxed_centered_list=[dino_targets.flatten(0, 1)])
                           * loss_scales / n_terms)
            terms["dino_global"] = p.dino_weight * dino_global
            accumulator += terms["dino_global"]
            if self.do_koleo:
                terms["koleo"] = p.koleo_weight * sum(
                    self.koleo_loss(x) for x in s_global["x_norm_clstoken"].chunk(2))
                accumulator += terms["koleo"]
        if do_ibot:
            ibot = (self.ibot_patch_loss.forward_masked(s_masked_after_head, ibot_targets, student_masks_flat=masks,
                                                        n_masked_patches=n_masked_patches,
                                                        masks_weight=masks_weight)
                    * loss_scales * ibot_loss_scale)
            terms["ibot"] = p.ibot_weight * ibot
            accumulator += terms["ibot"]
        self._mark("student_forward")
        accumulator.backward()
        self._mark("backward")
        terms["total"] = accumulator
        return OrderedDict((k, v.detach()) for k, v in terms.items())

    # -- clipping and EMA (train.py L248-265, ssl_meta_arch.py update_teacher) --------------------

    def clip_gradients(self) -> "OrderedDict[str, float]":
        """FSDP's clip_grad_norm_ per student sub-module: coef = min(1, max / (norm + 1e-6)).
        Returns the norms before clipping."""
        norms = OrderedDict()
        for k, m in self.student.items():
            n = torch.nn.utils.clip_grad_norm_(list(m.parameters()), self.p.clip_grad)
            norms[k] = float(n)
        return norms

    @torch.no_grad()
    def update_teacher(self, m: float) -> None:
        student_params, teacher_params = [], []
        for k in self.student.keys():
            student_params += list(self.student[k].parameters())
            teacher_params += list(self.teacher[k].parameters())
        torch._foreach_mul_(teacher_params, m)
        torch._foreach_add_(teacher_params, student_params, alpha=1 - m)

    def train_step(self, batch: dict, record_grads: bool = False) -> dict:
        """One iteration of train.py do_train: schedules, zero_grad, forward_backward, clip,
        AdamW step, teacher EMA."""
        if self.optimizer is None:
            self.build_optimizer()
        self._mark("start")
        self.apply_optim_scheduler()
        self.optimizer.zero_grad(set_to_none=True)
        terms = self.forward_backward(batch, teacher_temp=self.p.teacher_temp)
        grads = self.student_grads() if record_grads else None
        norms = self.clip_gradients() if self.p.clip_grad else {}
        self._mark("clip")
        self.optimizer.step()
        self._mark("adamw")
        self.update_teacher(self.p.teacher_momentum)
        self._mark("ema")
        return {"terms": terms, "grads": grads, "grad_norms": norms}


# ---------------------------------------------------------------------------------------------
# Inputs


CROP_STEP = 1.0 / 16.0


def _crop(g: torch.Generator, size: int) -> torch.Tensor:
    """A seeded normal crop rounded to multiples of 1/16 within ±4, so that the npz compresses
    (the fixtures share a 1.5 MB budget); exactly representable in float32."""
    x = torch.randn((3, size, size), generator=g)
    return (torch.round(x / CROP_STEP) * CROP_STEP).clamp(-4.0, 4.0)


def make_batch(p: Preset, step: int) -> dict:
    """Crops for one iteration, collated by the official collate_data_and_cast with train.py's
    MaskingGenerator; Python's `random` is seeded per step (the loader's workers seed it too)."""
    from dinov2.data import MaskingGenerator, collate_data_and_cast

    g = torch.Generator().manual_seed(100_000 * (p.seed + 1) + step)
    samples = []
    for _ in range(p.batch_size):
        image = {"global_crops": [_crop(g, p.global_size) for _ in range(N_GLOBAL)],
                 "local_crops": [_crop(g, p.local_size) for _ in range(p.n_local_crops)]}
        samples.append((image, ()))
    img_size = p.global_size  # train.py's crops.global_crops_size: the masks cover the global crops' grid
    mask_generator = MaskingGenerator(input_size=(img_size // PATCH, img_size // PATCH),
                                      min_num_patches=p.mask_min_patches,
                                      max_num_patches=0.5 * img_size // PATCH * img_size // PATCH)
    random.seed(10_000 * (p.seed + 1) + step)
    batch = collate_data_and_cast(samples, mask_ratio_tuple=p.mask_ratio_min_max,
                                  mask_probability=p.mask_sample_probability, dtype=torch.float32,
                                  n_tokens=(img_size // PATCH) ** 2, mask_generator=mask_generator)
    if batch["mask_indices_list"].numel() == 0:
        raise ValueError(f"{p.name} step {step}: no masked patch (iBOT Sinkhorn would divide by 0); change the seed")
    return batch


# ---------------------------------------------------------------------------------------------
# Running and writing a state


def run_state(p: Preset, log=None) -> dict:
    """Everything a debug state holds, computed; nothing written yet."""
    torch.manual_seed(p.seed)  # module constructors draw from it (all values are then overwritten)
    model = SSLStep(p)
    model.init_weights()
    initial = model.state_tensors()
    batches, steps, grads0, norms = [], [], None, []
    for t in range(p.steps):
        batch = make_batch(p, t)
        out = model.train_step(batch, record_grads=(t == 0))
        if t == 0:
            grads0 = out["grads"]
        batches.append(batch)
        steps.append(OrderedDict((k, float(v)) for k, v in out["terms"].items()))
        norms.append(out["grad_norms"])
        if log:
            log(f"  step {t}: " + ", ".join(f"{k} {v:.6f}" for k, v in steps[-1].items())
                + " | grad norms " + ", ".join(f"{k} {v:.3g}" for k, v in out["grad_norms"].items())
                + f" | masked {batch['mask_indices_list'].numel()}")
    return {"preset": p, "config": config_json(p), "initial": initial, "batches": batches, "steps": steps,
            "grads0": grads0, "final": model.state_tensors(), "grad_norms": norms}


def _json_bytes(obj) -> bytes:
    return (json.dumps(obj, indent=2) + "\n").encode()


def _npz_bytes(arrays: "OrderedDict[str, np.ndarray]") -> bytes:
    """What np.savez_compressed writes, with a fixed member timestamp so reruns are identical."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, a in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(a), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, member.getvalue())
    return buf.getvalue()


def _safetensors_bytes(tensors: "OrderedDict[str, torch.Tensor]") -> bytes:
    from safetensors.torch import save

    return save({k: v.to(torch.float32).contiguous() for k, v in tensors.items()})


def state_files(result: dict) -> "OrderedDict[str, bytes]":
    """File name -> bytes of a debug state."""
    files = OrderedDict()
    files["config.json"] = _json_bytes(result["config"])
    files["initial.safetensors"] = _safetensors_bytes(result["initial"])
    for t, b in enumerate(result["batches"]):
        files[f"step_{t}.npz"] = _npz_bytes(OrderedDict([
            ("global_crops", b["collated_global_crops"].numpy().astype("<f4")),
            ("local_crops", b["collated_local_crops"].numpy().astype("<f4")),
            ("masks", b["collated_masks"].numpy().astype(np.bool_)),
        ]))
    files["expected.json"] = _json_bytes({"steps": result["steps"]})
    files["grads_0.safetensors"] = _safetensors_bytes(result["grads0"])
    files["final.safetensors"] = _safetensors_bytes(result["final"])
    return files


def write_state(out_dir: str, files: "OrderedDict[str, bytes]") -> None:
    """Each file written to a temporary name and renamed, so a crash leaves no half file."""
    os.makedirs(out_dir, exist_ok=True)
    for name, data in files.items():
        path = os.path.join(out_dir, name)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)


def summary(result: dict, files: "OrderedDict[str, bytes]") -> dict:
    """Numbers for the README and reports (not part of the state)."""
    return {"name": result["preset"].name, "steps": result["steps"], "grad_norms": result["grad_norms"],
            "bytes": sum(len(v) for v in files.values()),
            "masked": [int(b["mask_indices_list"].numel()) for b in result["batches"]]}


# ---------------------------------------------------------------------------------------------
# Independent cross-check (run by `make-sslstep --check`)


def _head64(head: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """dinov2-spec.md §2.1 written out: MLP with exact GELU, L2 normalisation, weight-normed
    last layer W = g · v / ||v|| (row-wise)."""
    linears = [m for m in head.mlp.modules() if isinstance(m, nn.Linear)] if isinstance(head.mlp, nn.Sequential) \
        else [head.mlp]
    for i, lin in enumerate(linears):
        x = x @ lin.weight.T + lin.bias
        if i < len(linears) - 1:
            x = 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))
    x = x / x.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    v, g = head.last_layer.weight_v, head.last_layer.weight_g
    return x @ (g * v / v.norm(dim=1, keepdim=True)).T


def _sinkhorn64(t: torch.Tensor, temp: float, n_samples: float) -> torch.Tensor:
    q = torch.exp(t / temp).T
    k = q.shape[0]
    q = q / q.sum()
    for _ in range(3):
        q = q / q.sum(dim=1, keepdim=True) / k
        q = q / q.sum(dim=0, keepdim=True) / n_samples
    return (q * n_samples).T


def _koleo64(x: torch.Tensor) -> torch.Tensor:
    x = x / x.norm(dim=-1, keepdim=True).clamp(min=1e-8)
    dots = x @ x.T
    dots.fill_diagonal_(-1)
    nn_idx = dots.argmax(dim=1)
    d = (x - x[nn_idx] + 1e-8).norm(dim=-1)
    return -torch.log(d + 1e-8).mean()


def _expected_multipliers(p: Preset, module_key: str, name: str) -> tuple:
    """dinov2-spec.md §4.3 (upstream HEAD rules, registers in layer 0)."""
    lr_mult = 1.0
    if module_key == "backbone":
        if any(t in name for t in ("pos_embed", "patch_embed", "mask_token", "cls_token", "register_tokens")):
            layer = 0
        elif name.startswith("blocks."):
            layer = int(name.split(".")[1]) + 1
        else:
            layer = p.depth + 1
        lr_mult = p.layerwise_decay ** (p.depth + 1 - layer)
        if "patch_embed" in name:
            lr_mult *= p.patch_embed_lr_mult
    wd_mult = 0.0 if (name.endswith(".bias") or "norm" in name or "gamma" in name) else 1.0
    return lr_mult, wd_mult, "last_layer" in name


def crosscheck(p: Preset, result: dict) -> list:
    """Recomputes step 0's loss terms in float64 from the formulas of dinov2-spec.md §3 (own
    heads, swap, centering/Sinkhorn, n_terms, iBOT weights, KoLeo; only the backbone forward is
    the official module), checks the optimiser's parameter groups against §4.3 and that clipping
    bounds every sub-module. Returns (what, ok, detail) rows."""
    rows = []
    model = SSLStep(p)
    model.init_weights()
    for m in (model.student, model.teacher):
        m.double()
    batch = make_batch(p, 0)
    gc = batch["collated_global_crops"].double()
    lc = batch["collated_local_crops"].double()
    masks = batch["collated_masks"]
    b = p.batch_size
    tt = p.teacher_temp
    st = p.student_temp
    init = result["initial"]
    c_dino = init["dino_loss.center"].double()
    c_ibot = init["ibot_patch_loss.center"].double().reshape(1, -1)
    with torch.no_grad():
        t_out = model.teacher["backbone"](gc, is_training=True)
        s_g = model.student["backbone"](gc, masks=masks, is_training=True)
        s_l = model.student["backbone"](lc, is_training=True)
        t_cls = _head64(model.teacher["dino_head"], t_out["x_norm_clstoken"])
        t_cls = torch.cat([t_cls[b:], t_cls[:b]])  # targets for student crop 1 come from teacher crop 2
        idx = masks.flatten().nonzero().flatten()
        ibot_t = model.teacher["ibot_head"] if p.ibot_head else model.teacher["dino_head"]
        ibot_s = model.student["ibot_head"] if p.ibot_head else model.student["dino_head"]
        t_patch = _head64(ibot_t, t_out["x_norm_patchtokens"].flatten(0, 1)[idx])
        s_patch = _head64(ibot_s, s_g["x_norm_patchtokens"].flatten(0, 1)[idx])
        if p.centering == "centering":
            pd = torch.softmax((t_cls - c_dino) / tt, dim=-1)
            pi = torch.softmax((t_patch - c_ibot) / tt, dim=-1)
        else:
            pd = _sinkhorn64(t_cls, tt, t_cls.shape[0])
            pi = _sinkhorn64(t_patch, tt, t_patch.shape[0])
        s_gl = torch.log_softmax(_head64(model.student["dino_head"], s_g["x_norm_clstoken"]) / st, dim=-1)
        s_lo = torch.log_softmax(_head64(model.student["dino_head"], s_l["x_norm_clstoken"]) / st, dim=-1)

        def ce(target, logp):
            return -(target * logp).sum(-1).mean()

        n_terms = p.n_local_crops * 2 + 2
        local = sum(ce(pd[gi * b:(gi + 1) * b], s_lo[li * b:(li + 1) * b])
                    for li in range(p.n_local_crops) for gi in range(2)) / n_terms
        glob = (ce(pd[:b], s_gl[:b]) + ce(pd[b:], s_gl[b:])) / n_terms
        koleo = sum(_koleo64(s_g["x_norm_clstoken"][i * b:(i + 1) * b]) for i in range(2))
        per_crop = masks.sum(-1).clamp(min=1).double()
        w = (1.0 / per_crop)[idx // masks.shape[1]]
        ell = (pi * torch.log_softmax(s_patch / st, dim=-1)).sum(-1)
        ibot = -(w * ell).sum() / masks.shape[0]
        mine = {"dino_local": p.dino_weight * local, "dino_global": p.dino_weight * glob,
                "koleo": p.koleo_weight * koleo, "ibot": p.ibot_weight * ibot}
        mine["total"] = sum(mine.values())
    got = result["steps"][0]
    for k, v in mine.items():
        # float32 noise of the state is ~1e-7 relative to the terms' inputs; a KoLeo term near 0
        # is compared on the scale 0.1
        err = abs(float(v) - got[k]) / max(abs(float(v)), 0.1)
        rows.append((f"step 0 {k}", err < 1e-5, f"float64 {float(v):.8f} vs state {got[k]:.8f} (rel {err:.1e})"))

    if p.model_img_size != p.global_size:
        # The official forward resampled the table for the global crops too (it could not add a
        # (1+M²)-row table to tokens of another grid), and every table row received gradient.
        bb = model.student["backbone"]
        m, gg = p.model_img_size // PATCH, p.global_size // PATCH
        pe = bb.interpolate_pos_encoding(torch.zeros(1, 1 + gg * gg, p.embed_dim, dtype=torch.float64),
                                         p.global_size, p.global_size)
        g_pos = result["grads0"]["student.backbone.pos_embed"][0]
        good = tuple(pe.shape) == (1, 1 + gg * gg, p.embed_dim) and bool((g_pos.abs().sum(-1) > 0).all())
        rows.append((f"global crops resampled ({m}x{m} table -> {gg}x{gg})", good,
                     f"position rows {pe.shape[1]}, table rows with gradient {int((g_pos.abs().sum(-1) > 0).sum())}/{1 + m * m}"))

    # parameter groups
    model = SSLStep(p)
    model.build_optimizer()
    names = {}
    for k, m in model.student.items():
        for n, t in m.named_parameters():
            names[id(t)] = (k, n)
    bad = []
    for grp in model.optimizer.param_groups:
        for t in grp["params"]:
            k, n = names[id(t)]
            want = _expected_multipliers(p, k, n)
            have = (grp["lr_multiplier"], grp["wd_multiplier"], grp["is_last_layer"])
            if not (math.isclose(want[0], have[0], rel_tol=1e-12) and want[1:] == have[1:]):
                bad.append(f"{k}.{n}: {have} != {want}")
    rows.append(("param groups (§4.3)", not bad, "; ".join(bad) or f"{len(names)} tensors"))
    init, final = result["initial"], result["final"]
    frozen, moved = [], []
    for name in init:
        if not name.startswith("student."):
            continue
        same = torch.equal(init[name], final[name])
        if p.last_layer_lr == 0 and ".last_layer." in name:
            frozen.append(same)
        else:
            moved.append(not same)
    rows.append(("every student tensor moved" + (", last layer frozen" if frozen else ""),
                 all(moved) and all(frozen), f"{sum(moved)}/{len(moved)} moved, {sum(frozen)}/{len(frozen)} frozen"))
    clipped = all(n > p.clip_grad for norms in result["grad_norms"] for n in norms.values())
    rows.append(("clipping active (every norm > clip_grad)", clipped,
                 ", ".join(f"{n:.3g}" for norms in result["grad_norms"] for n in norms.values())))
    return rows
