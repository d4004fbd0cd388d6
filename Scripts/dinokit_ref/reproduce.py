"""Regenerated reference files against the committed ones, with a stated tolerance.

PyTorch does not promise the same bits on two processors: oneDNN, MKL and ATen pick kernels per CPU
(AVX-512 or AVX2, Intel or AMD), and reduction orders and vectorised `log`/`cos` differ in the last
bits. A `--check` that reruns the official code therefore compares values, never bytes:

- floating-point values (arrays, tensors, JSON numbers): max |new - committed| <= rtol * max(1, max
  |committed|), the maximum taken over one array, tensor or list of numbers (a lone JSON number is
  its own scale); NaN and infinity must stand in the same places. rtol is RTOL for what a forward
  computes (model outputs, losses, crops, references of single ops) and RTOL_BACKWARD for what a
  backward pass and optimiser steps compute (gradients, parameters after steps), where rounding
  differences pass through two or three times as many operations and AdamW divides by sqrt(v);
- everything that is exact on every machine is compared exactly: integers, booleans and masks,
  dtypes, shapes, names and their order, JSON structure and strings, safetensors metadata, PNG pixels
  (decoded: zlib versions lay out the bytes differently), and any other file byte for byte.

Both are well above the drift measured between CPU paths and well below what a change in the official
code moves (Fixtures/README.md, "Tolerances"); `Scripts/check-mutants` proves the checks still fail
on such changes.
"""
import io
import json
import os
import struct
from dataclasses import dataclass, field

import numpy as np

RTOL = 1e-5
RTOL_BACKWARD = 1e-4


@dataclass
class Verdict:
    """One compared file (or in-memory output set): the worst value difference and the tolerance
    that applied there, or what did not match exactly."""
    name: str
    rtol: object = RTOL  # a float, or a function of the array's name inside the file
    diff: float = 0.0
    tol: float = 0.0
    where: str = ""
    loose_diff: float = 0.0  # the same for elements given a looser bound (compare_bytes' `loose`)
    loose_tol: float = 0.0
    problems: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.diff <= self.tol and self.loose_diff <= self.loose_tol

    def detail(self) -> str:
        """`name: max diff D / tol T (where)`, `name: exact`, or what did not match."""
        if self.problems:
            more = f" (+{len(self.problems) - 3} more)" if len(self.problems) > 3 else ""
            return f"{self.name}: {'; '.join(self.problems[:3])}{more}"
        if self.tol == 0.0:
            return f"{self.name}: exact"
        text = f"{self.name}: max diff {self.diff:.3g} / tol {self.tol:.3g}" + (f" ({self.where})" if self.where else "")
        if self.loose_tol:
            text += f"; noise-moved elements max diff {self.loose_diff:.3g} / tol {self.loose_tol:.3g}"
        return text

    def line(self) -> str:
        return f"  {'ok  ' if self.ok else 'FAIL'} {self.detail()}"

    # Accumulation -------------------------------------------------------------------------------

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def floats(self, where: str, new: np.ndarray, old: np.ndarray, loose=None) -> None:
        """Floating-point values of one array: NaN/inf placement exact, the rest within tolerance.
        `loose` = (mask, tol): the masked elements get that tolerance instead (see compare_bytes)."""
        new64, old64 = new.astype(np.float64), old.astype(np.float64)
        finite = np.isfinite(old64)
        if not np.array_equal(finite, np.isfinite(new64)) or \
                not np.array_equal(old64[~finite], new64[~finite], equal_nan=True):
            self.problem(f"{where}: NaN/inf placement differs")
            return
        scale = float(np.max(np.abs(old64[finite]))) if finite.any() else 0.0
        err = np.where(finite, np.abs(new64 - old64), 0.0)
        if loose is not None:
            mask, loose_tol = loose
            mask = np.asarray(mask, dtype=bool).reshape(err.shape)
            if mask.any():
                self.loose_diff = max(self.loose_diff, float(err[mask].max()))
                self.loose_tol = loose_tol
            err = np.where(mask, 0.0, err)
        rtol = self.rtol(where) if callable(self.rtol) else self.rtol
        self._worst(where, float(err.max()) if err.size else 0.0, rtol * max(1.0, scale))

    def _worst(self, where: str, diff: float, tol: float) -> None:
        """Keeps the place that is closest to (or furthest past) its tolerance."""
        if self.tol == 0.0 or diff / tol > self.diff / self.tol:
            self.diff, self.tol, self.where = diff, tol, where

    def array(self, where: str, new: np.ndarray, old: np.ndarray) -> None:
        if new.dtype != old.dtype or new.shape != old.shape:
            self.problem(f"{where}: {new.dtype}{list(new.shape)}, committed {old.dtype}{list(old.shape)}")
        elif new.dtype.kind in "fc":
            self.floats(where, new, old)
        elif not np.array_equal(new, old):
            self.problem(f"{where}: {np.count_nonzero(new != old)} of {new.size} values differ (exact dtype {new.dtype})")


# File kinds ------------------------------------------------------------------------------------


def _npy(v: Verdict, new: bytes, old: bytes) -> None:
    v.array("array", np.load(io.BytesIO(new)), np.load(io.BytesIO(old)))


def _npz(v: Verdict, new: bytes, old: bytes) -> None:
    a, b = np.load(io.BytesIO(new)), np.load(io.BytesIO(old))
    if a.files != b.files:
        v.problem(f"members {a.files}, committed {b.files}")
        return
    for k in a.files:
        v.array(k, a[k], b[k])


def _safetensors_header(data: bytes) -> dict:
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n])


def _safetensors(v: Verdict, new: bytes, old: bytes, loose=None) -> None:
    from safetensors.torch import load

    ha, hb = _safetensors_header(new), _safetensors_header(old)
    if ha.get("__metadata__") != hb.get("__metadata__"):
        v.problem("metadata differs")
    names_a = [k for k in ha if k != "__metadata__"]
    names_b = [k for k in hb if k != "__metadata__"]
    if names_a != names_b:
        v.problem(f"tensor names differ ({len(names_a)} vs committed {len(names_b)})")
        return
    ta, tb = load(new), load(old)
    for k in names_a:
        if ha[k]["dtype"] != hb[k]["dtype"] or ha[k]["shape"] != hb[k]["shape"]:
            v.problem(f"{k}: {ha[k]['dtype']}{ha[k]['shape']}, committed {hb[k]['dtype']}{hb[k]['shape']}")
        elif ta[k].is_floating_point():
            v.floats(k, ta[k].float().numpy(), tb[k].float().numpy(), (loose or {}).get(k))
        elif not bool((ta[k] == tb[k]).all()):
            v.problem(f"{k}: values differ (exact dtype {ha[k]['dtype']})")


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _json_value(v: Verdict, where: str, new, old) -> None:
    if type(new) is not type(old):
        v.problem(f"{where}: {type(new).__name__}, committed {type(old).__name__}")
    elif isinstance(old, dict):
        if list(new) != list(old):
            v.problem(f"{where}: keys differ")
            return
        for k in old:
            _json_value(v, f"{where}.{k}" if where else k, new[k], old[k])
    elif isinstance(old, list):
        if len(new) != len(old):
            v.problem(f"{where}: {len(new)} items, committed {len(old)}")
        elif old and all(isinstance(x, float) for x in old) and all(isinstance(x, float) for x in new):
            v.floats(where, np.array(new), np.array(old))  # a list of numbers is one output
        else:
            for i, (a, b) in enumerate(zip(new, old)):
                _json_value(v, f"{where}[{i}]", a, b)
    elif isinstance(old, float):
        v.floats(where, np.array([new]), np.array([old]))
    elif new != old:
        v.problem(f"{where}: {new!r}, committed {old!r}")


def _json(v: Verdict, new: bytes, old: bytes) -> None:
    _json_value(v, "", json.loads(new), json.loads(old))


def _png(v: Verdict, new: bytes, old: bytes) -> None:
    from PIL import Image

    try:
        a, b = Image.open(io.BytesIO(new)), Image.open(io.BytesIO(old))
        a.load(), b.load()
    except Exception:  # not a decodable image (e.g. a deliberately broken one): compare bytes
        _bytes(v, new, old)
        return
    if (a.mode, a.size) != (b.mode, b.size):
        v.problem(f"{a.mode} {a.size}, committed {b.mode} {b.size}")
    else:
        v.array("pixels", np.asarray(a), np.asarray(b))


def _bytes(v: Verdict, new: bytes, old: bytes) -> None:
    if new != old:
        v.problem(f"bytes differ ({len(new)} vs committed {len(old)})")


KINDS = {".npy": _npy, ".npz": _npz, ".safetensors": _safetensors, ".json": _json, ".png": _png}


def compare_bytes(name: str, new: bytes, old: bytes, rtol=RTOL, loose=None) -> Verdict:
    """`new` (just regenerated) against `old` (committed), by the file kind its name says; `rtol` is a
    float or a function of an array's (tensor's, JSON path's) name.
    `loose`, for safetensors only: tensor name -> (element mask, tolerance) for elements whose value
    is float noise by construction (see make-sslstep: AdamW moves on a gradient that is 0 in exact
    arithmetic); the rest of the tensor keeps the tight tolerance."""
    v = Verdict(name, rtol)
    if loose is not None:
        _safetensors(v, new, old, loose)
    else:
        KINDS.get(os.path.splitext(name)[1], _bytes)(v, new, old)
    return v


def compare_arrays(name: str, new: dict, old: dict) -> Verdict:
    """In-memory outputs (name -> array) against committed arrays of the same names."""
    v = Verdict(name)
    if sorted(new) != sorted(old):
        v.problem(f"outputs {sorted(new)}, committed {sorted(old)}")
    for k in sorted(set(new) & set(old)):
        v.array(k, np.asarray(new[k]), np.asarray(old[k]))
    return v


def _files(root: str) -> list:
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def compare_trees(new_root: str, old_root: str, ignore=("README.md",), rtol_for=lambda name: RTOL) -> list:
    """Every file of a regenerated folder against the committed folder; a file only on one side fails.
    `rtol_for(relative path)` says which tolerance a file's values get (a float or a function of the
    array's name)."""
    made, have = _files(new_root), [f for f in _files(old_root) if os.path.basename(f) not in ignore]
    out = []
    for f in sorted(set(made) | set(have)):
        if f not in have:
            out.append(Verdict(f, problems=["made now but not committed"]))
        elif f not in made:
            out.append(Verdict(f, problems=["committed but not made now"]))
        else:
            with open(os.path.join(new_root, f), "rb") as a, open(os.path.join(old_root, f), "rb") as b:
                out.append(compare_bytes(f, a.read(), b.read(), rtol_for(f)))
    return out


def report(verdicts: list, label: str) -> bool:
    """Prints a line per verdict and the closing `label: N passed, N failed`; True if all passed."""
    for v in verdicts:
        print(v.line())
    failed = sum(not v.ok for v in verdicts)
    print(f"{label}: {len(verdicts) - failed} passed, {failed} failed")
    return failed == 0
