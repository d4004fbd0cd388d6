"""Interop check: the reference safetensors readers accept what DinoKit wrote.

`check_safetensors(path, reference, metadata)` loads `path` with `safetensors.torch.load_file` and
with `safetensors.numpy` (tensor by tensor, for the dtypes NumPy has: it has no bfloat16 or float8)
and raises AssertionError unless names, dtypes, shapes and bytes (bit for bit, NaNs included) and
the `__metadata__` equal the reference. It also checks the layout the reference writer produces:
header length a multiple of 8 and tensors in its order (dtype descending, then name).

Run as a script on a folder of DinoKit outputs (e.g. `dinokit convert` of the fixtures):
    interop_safetensors.py <dir>
Each `<dir>/<stem>.safetensors` is compared with `Fixtures/safetensors/<stem>.safetensors` as the
reference loads it, and `<dir>/synthetic.safetensors`, if present, with the same store built here.
(The synthetic store's bytes are checked in SafetensorsTests against the reference writer's.)"""
import json
import os
import struct
import sys

import numpy as np
import torch
import safetensors.numpy as stnp  # noqa: F401  (imported so a missing numpy backend fails loudly)
import safetensors.torch as stt
from safetensors import safe_open

# The reference writer's dtype order (safetensors' Dtype enum), used descending.
DTYPE_ORDER = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32",
               "F32", "F64", "I64", "U64"]
NO_NUMPY = {torch.bfloat16, torch.float8_e4m3fn, torch.float8_e5m2}


def _as_torch(x) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.array(x, order="C", copy=True))


def _bits(t: torch.Tensor) -> bytes:
    t = t.contiguous()
    return t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


def _same(name: str, got: torch.Tensor, want: torch.Tensor, reader: str) -> None:
    if got.dtype != want.dtype:
        raise AssertionError(f"{reader}: {name}: dtype {got.dtype}, expected {want.dtype}")
    if tuple(got.shape) != tuple(want.shape):
        raise AssertionError(f"{reader}: {name}: shape {tuple(got.shape)}, expected {tuple(want.shape)}")
    if _bits(got) != _bits(want):
        raise AssertionError(f"{reader}: {name}: values differ")


def check_safetensors(path: str, reference: dict, metadata: dict | None) -> None:
    want = {k: _as_torch(v) for k, v in reference.items()}

    loaded = stt.load_file(path)
    if set(loaded) != set(want):
        raise AssertionError(f"torch: names {sorted(loaded)}, expected {sorted(want)}")
    for k, t in loaded.items():
        _same(k, t, want[k], "safetensors.torch")

    with safe_open(path, framework="np") as f:
        got_meta = f.metadata()
        for k in f.keys():
            if want[k].dtype in NO_NUMPY:
                continue
            _same(k, torch.from_numpy(np.array(f.get_tensor(k), order="C", copy=True)), want[k], "safetensors.numpy")
    if (got_meta or {}) != (metadata or {}):
        raise AssertionError(f"metadata {got_meta!r}, expected {metadata!r}")
    if not want:
        stnp.load_file(path)  # an empty file must load through the numpy front end too

    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
    if n % 8:
        raise AssertionError(f"header length {n} is not a multiple of 8")
    names = [k for k in header if k != "__metadata__"]
    expected_order = sorted(names, key=lambda k: (-DTYPE_ORDER.index(header[k]["dtype"]), k.encode()))
    if names != expected_order:
        raise AssertionError(f"tensor order {names}, reference writer order {expected_order}")


def synthetic_reference() -> tuple[dict, dict]:
    """The store SafetensorsTests.syntheticStore() writes, built from the same seeded generator."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from dinokit_ref.synthetic import lcg_tensor

    base = torch.from_numpy(lcg_tensor(20, (4, 3)))
    source = torch.from_numpy(lcg_tensor(21, (2, 3)))
    tensors = {
        "weight": base,
        "weight_bf16": base.to(torch.bfloat16),
        "weight_f16": base.to(torch.float16),
        "transposed": source.t(),
        "row2": base[2],
        "scalar": torch.tensor(0.5),
        "empty": torch.zeros(0, 4),
    }
    return tensors, {"format": "pt", "producer": "DinoKit", "quote": "\"\\\n\x07\u00e9"}


def main(folder: str) -> None:
    fixtures = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Fixtures", "safetensors")
    checked = 0
    for entry in sorted(os.listdir(folder)):
        if not entry.endswith(".safetensors"):
            continue
        path = os.path.join(folder, entry)
        if entry == "synthetic.safetensors":
            tensors, metadata = synthetic_reference()
        else:
            source = os.path.join(fixtures, entry)
            tensors = stt.load_file(source)
            with safe_open(source, framework="pt") as f:
                metadata = f.metadata()
        check_safetensors(path, tensors, metadata)
        checked += 1
        print(f"ok  {entry}")
    if not checked:
        raise SystemExit(f"no .safetensors files in {folder}")
    print(f"{checked} files accepted by safetensors.torch and safetensors.numpy, tensors and metadata equal")


if __name__ == "__main__":
    main(sys.argv[1])
