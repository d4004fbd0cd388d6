"""DinoKit's int8 rule (`--precision int8`, `export-onnx --dtype int8`) written independently in
NumPy, run inside the reference models of the golden sets.

The rule, for every Linear GEMM (and the patch embedding as a GEMM over unfolded patches):
  weights per output channel, activations per token (GEMM input row), both symmetric:
    s = max|row| / 127 (1 for an all-zero row), q = clip(rint(row / s), -127, 127)   (rint: half to even)
  acc = sum_k q_a q_w in integers (exact), y = (float32(acc) * s_a) * s_w + bias, in float32.
Everything else (attention, LayerNorm, GELU, residuals) is the reference model's own float32.

`Int8Reference(folder)` builds the golden set's reference (the official DINOv2 code, or
transformers' Dinov2Model / DINOv3ViTModel, as the goldens were made) from the set's
model.safetensors, swaps every nn.Linear and the patch nn.Conv2d for the rule above, and returns
outputs under the ONNX export's names.
"""
import json
import os

import numpy as np
import torch

LIMIT = np.float32(127)


def quantize_rows(x: np.ndarray):
    """(q int64, s float32 with a trailing 1) for the rows (last axis) of float32 `x`."""
    x = np.asarray(x, dtype=np.float32)
    amax = np.abs(x).max(axis=-1, keepdims=True)
    s = np.where(amax == 0, np.float32(1), amax / LIMIT).astype(np.float32)
    q = np.clip(np.rint(x / s), -LIMIT, LIMIT).astype(np.int64)
    return q, s


def int8_linear(x: np.ndarray, w: np.ndarray, b) -> np.ndarray:
    """x (..., K) float32, w (O, K) float32 (PyTorch layout), b (O,) or None."""
    qa, sa = quantize_rows(x)
    qw, sw = quantize_rows(w)
    acc = np.matmul(qa, qw.T)  # int64: exact
    y = (acc.astype(np.float32) * sa) * sw.reshape(-1)
    if b is not None:
        y = y + np.asarray(b, dtype=np.float32)
    return y.astype(np.float32)


def _linear_forward(module):
    def forward(x):
        b = None if module.bias is None else module.bias.detach().numpy()
        y = int8_linear(x.detach().numpy(), module.weight.detach().numpy(), b)
        return torch.from_numpy(y)
    return forward


def _patch_forward(module):
    """A Conv2d with kernel = stride = p, no padding: the unfold (rows of C·p·p in (c, ky, kx)
    order, as the weight is laid out) and the int8 GEMM."""
    p = module.kernel_size[0]
    assert module.kernel_size == (p, p) and module.stride == (p, p) and module.padding in ((0, 0), "valid")

    def forward(x):
        n, c, hh, ww = x.shape
        h, w = hh // p, ww // p
        a = x.detach().numpy()[:, :, :h * p, :w * p].reshape(n, c, h, p, w, p).transpose(0, 2, 4, 1, 3, 5)
        rows = np.ascontiguousarray(a).reshape(n, h * w, c * p * p)
        weight = module.weight.detach().numpy().reshape(module.out_channels, -1)
        b = None if module.bias is None else module.bias.detach().numpy()
        y = int8_linear(rows, weight, b)  # (n, h·w, D)
        return torch.from_numpy(np.ascontiguousarray(y.transpose(0, 2, 1).reshape(n, -1, h, w)))
    return forward


def quantize_module(model: torch.nn.Module) -> int:
    """Swaps the forward of every nn.Linear and nn.Conv2d in `model`; returns how many."""
    count = 0
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            m.forward = _linear_forward(m)
            count += 1
        elif isinstance(m, torch.nn.Conv2d):
            m.forward = _patch_forward(m)
            count += 1
    return count


ONNX_NAMES = {"x_storage_tokens": "x_norm_regtokens"}


class Int8Reference:
    """The golden set `folder`'s reference model with the int8 rule in its GEMMs."""

    def __init__(self, folder: str):
        import dinokit_ref.compat  # noqa: F401
        from safetensors.torch import load_file

        from dinokit_ref import goldens as G
        from dinokit_ref import goldens_v3 as V3

        name = os.path.basename(folder.rstrip("/"))
        with open(os.path.join(folder, "manifest.json")) as f:
            manifest = json.load(f)
        sd = load_file(os.path.join(folder, manifest["weights"]))
        if manifest.get("family") == "dinov3":
            spec = next(s for s in V3.tiny_sets() + V3.full_sets() if s.folder == name)
            self.ref = V3.reference_for(spec, sd, allow_fallback=True)
            self.keys = ["x_norm_clstoken", "x_storage_tokens", "x_norm_patchtokens"]
        else:
            spec = next(s for s in G.tiny_sets() + G.full_sets() if os.path.basename(s.folder) == name)
            self.ref = G.reference_for(spec, sd)
            self.keys = ["x_norm_clstoken", "x_norm_patchtokens"] + (["x_norm_regtokens"] if spec.model.registers else [])
        self.quantized = quantize_module(self.ref.model)

    def run(self, x: np.ndarray) -> dict:
        out = self.ref.run(torch.from_numpy(np.ascontiguousarray(x)), None, self.keys, [])
        return {ONNX_NAMES.get(k, k): v for k, v in out.items()}
