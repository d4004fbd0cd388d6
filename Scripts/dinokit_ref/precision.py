"""Reduced-precision peers of DinoKit's `--precision bf16|int8`, and how their outputs are compared.

Each peer is the runtime's own, stock way of running a float32 model in lower precision, so the
comparison is with what a user of that runtime would get:
  PyTorch bf16   forward under torch.autocast("cpu", dtype=torch.bfloat16) (oneDNN bf16 GEMMs;
                 norms and softmax stay f32 by autocast's own lists);
  PyTorch int8   torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8):
                 per-tensor symmetric int8 weights, dynamic per-tensor uint8 activations (the
                 default dynamic qconfig; the patch embedding is a Conv2d and stays f32);
  ONNX Runtime int8  onnxruntime.quantization's documented recipe: quant_pre_process (shape
                 inference and ORT's basic graph optimisations), then quantize_dynamic(..., QInt8)
                 with its defaults: per-tensor int8 weights of every MatMul/Gemm/Conv whose weight
                 is an initializer (MatMulInteger, ConvInteger), dynamic per-tensor uint8
                 activations (DynamicQuantizeLinear). The pre-processing matters: DinoKit's export
                 keeps each linear weight as its hub (out, in) initializer behind a Transpose node,
                 which quantize_dynamic alone does not see as a weight (it would quantize only the
                 patch embedding's Conv); constant folding turns it into an initializer, and then
                 all 48 linear layers of a 12-block model are quantized in either export.

Accuracy is measured the same way for every engine (`compare`): the engine's x_norm_clstoken and
x_norm_patchtokens on one input against the float32 official model's, per token, in float64.
"""
import contextlib
import os

import numpy as np

TORCH_PRECISIONS = ("f32", "bf16", "int8")
OUTPUTS = ("x_norm_clstoken", "x_norm_patchtokens")


def torch_at(model, precision: str):
    """(model, context factory) running `model` at `precision` as PyTorch's stock tools do."""
    import torch

    if precision == "f32":
        return model, contextlib.nullcontext
    if precision == "bf16":
        return model, lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    if precision == "int8":
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notices
            quantized = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        return quantized, contextlib.nullcontext
    raise SystemExit(f"--precision: one of {', '.join(TORCH_PRECISIONS)}, not {precision!r}")


def torch_engine(precision: str) -> str:
    return {"f32": "float32", "bf16": "torch.autocast bf16",
            "int8": "quantize_dynamic(nn.Linear, qint8)"}[precision]


def ort_quantize(f32_path: str, out: str) -> None:
    """quant_pre_process, then quantize_dynamic with its defaults and int8 weights."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    ort.set_default_logger_severity(3)  # "Removing initializer 'mask_token'" (unused: no masks input)
    pre, tmp = out + ".pre.onnx", out + ".tmp.onnx"
    quant_pre_process(f32_path, pre)
    quantize_dynamic(pre, tmp, weight_type=QuantType.QInt8)
    os.remove(pre)
    os.replace(tmp, out)


def save_outputs(path: str, outputs: dict) -> None:
    """x_norm_clstoken and x_norm_patchtokens as float32 .npz, as `dinokit forward --out` names them."""
    np.savez(path, **{k: np.asarray(outputs[k], dtype=np.float32) for k in OUTPUTS})


def load_input(path: str) -> np.ndarray:
    x = np.load(path)
    if x.dtype != np.float32 or x.ndim != 4 or x.shape[1] != 3:
        raise SystemExit(f"{path}: want float32 (B, 3, H, W), not {x.dtype} {x.shape}")
    return x


def token_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each token vector (last axis), in float64; two zero vectors agree."""
    a = a.astype(np.float64).reshape(-1, a.shape[-1])
    b = b.astype(np.float64).reshape(-1, b.shape[-1])
    dot = (a * b).sum(1)
    na, nb = np.sqrt((a * a).sum(1)), np.sqrt((b * b).sum(1))
    return np.where((na == 0) & (nb == 0), 1.0,
                    np.where((na == 0) | (nb == 0), 0.0, dot / np.maximum(na * nb, 1e-300)))


def compare(got: np.ndarray, ref: np.ndarray) -> dict:
    """Mean and least per-token cosine, max |got - ref| and that over max |ref|."""
    if got.shape != ref.shape:
        raise ValueError(f"shape {got.shape} vs reference {ref.shape}")
    c = token_cosines(got, ref)
    err = float(np.abs(got.astype(np.float64) - ref.astype(np.float64)).max())
    scale = float(np.abs(ref).max())
    return {"cosine_mean": float(c.mean()), "cosine_min": float(c.min()), "max_abs": err,
            "rel_max_abs": err / scale if scale else float("nan")}
