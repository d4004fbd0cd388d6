"""The DINOv3 part of `make-goldens --check`: the hub layout and RoPE against the official code,
transformers / official / timm against each other on the golden weights, the traps the sets are
built to spring, the HF-folder interop check on itself, then the committed v3 sets validated and
recomputed within the tolerance of reproduce.py. Everything that needs the official dinov3 code is
reported as skipped when no checkout is given (--official DIR or DINOKIT_DINOV3_OFFICIAL)."""
import json
import math
import os
import tempfile

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from . import goldens_v3 as V
from . import layout_v3 as L
from .reproduce import compare_arrays

# The codes must agree to AGREE * max(1, max |output|) per output (measured: ~1e-6 on the tiny sets,
# ~6e-6 on 12-block full-size shapes whose x_prenorm reaches 12; float32 rounding order only).
AGREE = 1e-5


def _max_abs(a: dict, b: dict, keys=None) -> float:
    keys = [k for k in (keys or a) if k in b]
    return max(float(np.max(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64)))) for k in keys)


def _worst_ratio(a: dict, b: dict) -> float:
    """max over outputs of max|a - b| / (AGREE * max(1, max|a|))."""
    return max(float(np.max(np.abs(a[k].astype(np.float64) - b[k]))) / (AGREE * max(1.0, float(np.max(np.abs(a[k])))))
               for k in a if k in b)


@torch.no_grad()
def check_layout(c, official: str) -> None:
    """layout_v3.hub_shapes (which the goldens are written from) is exactly the official
    state_dict: names, order, shapes, dtypes; the two buffers equal the official init."""
    if not official:
        c.skip("hub layout == official DinoVisionTransformer.state_dict() (no official dinov3 code given)")
        return
    for spec in list(V.TINY.values()) + list(V.FULL.values()):
        tiny = spec.name in V.TINY
        model = L.official_model(spec, None, official, device=None if tiny else "meta")
        theirs = model.state_dict()
        mine = L.hub_shapes(spec)
        same = list(theirs) == list(mine) and all(tuple(theirs[k].shape) == mine[k] and
                                                  theirs[k].dtype == torch.float32 for k in mine)
        label = f"{spec.name}: hub names/order/shapes/dtypes == official state_dict() ({len(mine)} tensors)"
        if tiny:
            model.init_weights()
            sd = V.seeded_state_dict(spec)
            bufs = [k for k in sd if k == "rope_embed.periods" or k.endswith(".bias_mask")]
            same = same and all(torch.equal(model.state_dict()[k], sd[k]) for k in bufs)
            label += ", periods and bias_mask == official init"
        c.expect(same, label)


@torch.no_grad()
def check_rope(c, official: str) -> dict:
    """sin/cos of the three codes against the formula in float64 (dinov3-spec.md, RoPE)."""
    from transformers.models.dinov3_vit.modeling_dinov3_vit import DINOv3ViTRopePositionEmbedding

    numbers = {}
    for dh, (h, w) in ((8, (2, 3)), (16, (14, 14)), (32, (10, 16)), (64, (40, 40)), (64, (12, 7))):
        periods = 100.0 ** (2 * np.arange(dh // 4) / (dh // 2))
        ch = (np.arange(0.5, h) / h) * 2 - 1
        cw = (np.arange(0.5, w) / w) * 2 - 1
        coords = np.stack(np.meshgrid(ch, cw, indexing="ij"), -1).reshape(-1, 2)  # (HW, 2): (y, x)
        ang = (2 * math.pi * coords[:, :, None] / periods[None, None, :]).reshape(h * w, dh // 2)
        ang = np.concatenate([ang, ang], -1)
        want_sin, want_cos = np.sin(ang), np.cos(ang)
        spec = L.V3Spec("rope", dh * 2, 1, 2)
        got = {}
        hf = DINOv3ViTRopePositionEmbedding(L.hf_config(spec)).eval()
        cos, sin = hf(torch.zeros(1, 3, 16 * h, 16 * w))
        got["transformers"] = (sin, cos)
        t = L.timm_model(spec).rope.get_embed(shape=(h, w))
        got["timm"] = (t[:, :dh], t[:, dh:])
        if official:
            m = L.official_model(spec, None, official)
            got["official"] = m.rope_embed(H=h, W=w)
        diffs = {k: max(float(np.abs(s.double().numpy() - want_sin).max()),
                        float(np.abs(co.double().numpy() - want_cos).max())) for k, (s, co) in got.items()}
        numbers[f"Dh{dh} {h}x{w}"] = diffs
        c.expect(max(diffs.values()) <= 2e-6, f"RoPE sin/cos, head dim {dh}, {h}x{w} grid, vs float64 formula: "
                 + ", ".join(f"{k} {v:.2g}" for k, v in diffs.items()))
    if not official:
        c.skip("RoPE of the official RopePositionEmbedding (no official dinov3 code given)")
    return numbers


@torch.no_grad()
def cross_check_codes(c, official: str, sets=None) -> dict:
    """transformers, official and timm on the same golden weights and inputs (all cases of each set;
    timm has no masks), max abs over every output key. Returns {set: {pair: diff}}."""
    numbers = {}
    for spec in sets or V.tiny_sets():
        sd = V.seeded_state_dict(spec.model)
        refs = {"transformers": V.HFReference(spec.model, sd), "timm": V.TimmReference(spec.model, sd)}
        if official:
            refs["official"] = V.OfficialReference(spec.model, sd, official)
        pairs, ratios = {}, {}
        for case in spec.cases:
            outs = {n: V.compute_case(spec, r, case) for n, r in refs.items() if not (case.masked and n == "timm")}
            names = list(outs)
            for i, a in enumerate(names):
                for b in names[i + 1:]:
                    key = f"{a} vs {b}"
                    pairs[key] = max(pairs.get(key, 0.0), _max_abs(outs[a], outs[b]))
                    ratios[key] = max(ratios.get(key, 0.0), _worst_ratio(outs[a], outs[b]))
        numbers[spec.folder] = pairs
        for pair, diff in pairs.items():
            c.expect(ratios[pair] <= 1.0, f"{spec.folder}: {pair}, all cases{' but masked' if 'timm' in pair else ''}: "
                                          f"max abs diff {diff:.3g} ({ratios[pair]:.2f} of {AGREE:g} * max(1, |out|))")
        if not official:
            c.skip(f"{spec.folder}: the official dinov3 code vs transformers and timm (no official code given)")
    return numbers


@torch.no_grad()
def check_traps(c) -> dict:
    """What the tiny sets are built to catch, measured against their truth on x160x256 and
    masked224: a port that adds the key bias (ignores bias_mask), uses LayerNorm eps 1e-6, normalises
    the cls/storage tokens with `norm` instead of cls_norm, or drops the mask token. Each must miss
    the golden by far more than the verifier's tolerance (atol 1e-4)."""
    from transformers import DINOv3ViTModel

    numbers = {}
    for spec in V.tiny_sets():
        sd = V.seeded_state_dict(spec.model)
        truth = V.HFReference(spec.model, sd)
        x160 = next(k for k in spec.cases if k.name == "x160x256")
        m224 = next(k for k in spec.cases if k.name == "masked224")
        base = V.compute_case(spec, truth, x160)
        got = {}
        # key bias: transformers with a k_proj bias holding the stored key third
        keyed = V.HFReference(spec.model, sd)
        cfg = keyed.model.config
        cfg.key_bias = True
        m = DINOv3ViTModel(cfg)
        hf_sd = dict(keyed.model.state_dict())
        d = spec.model.embed_dim
        for i in range(spec.model.depth):
            hf_sd[f"model.layer.{i}.attention.k_proj.bias"] = sd[f"blocks.{i}.attn.qkv.bias"][d:2 * d]
        m.load_state_dict(hf_sd, strict=True)
        keyed.model = m.eval()
        got["key bias added (bias_mask ignored)"] = _max_abs(base, V.compute_case(spec, keyed, x160))
        eps = V.HFReference(spec.model, sd)
        for mod in eps.model.modules():
            if isinstance(mod, torch.nn.LayerNorm):
                mod.eps = 1e-6
        if eps.cls_norm is not None:
            eps.cls_norm.eps = 1e-6
        got["LayerNorm eps 1e-6"] = _max_abs(base, V.compute_case(spec, eps, x160))
        if spec.model.untie_cls_and_patch_norms:
            tied = V.HFReference(spec.model, sd)
            tied.cls_norm = None
            got["cls_norm ignored (cls, storage)"] = _max_abs(base, V.compute_case(spec, tied, x160),
                                                             ["x_norm_clstoken", "x_storage_tokens"])
        masked = V.compute_case(spec, truth, m224)
        nomask = truth.run(torch.from_numpy(V.case_input(spec, m224)[0]), None, m224.keys, [])
        got["mask token not applied"] = _max_abs(masked, nomask)
        numbers[spec.folder] = got
        for what, diff in got.items():
            c.expect(diff > 1e-2, f"{spec.folder}: {what} moves the outputs by {diff:.3g} (must be > 0.01)")
    return numbers


def check_interop(c) -> None:
    """check_hf_folder on a correct HF folder (layout_v3.write_hf_folder: no problems, tensors equal)
    and on broken ones (a tensor left out; the key bias written): the problems are reported."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the broken folder's load report is checked below, not printed
    hf_logging.disable_progress_bar()
    spec = V.TINY["tiny-v3-swiglu"]
    sd = V.seeded_state_dict(spec)
    with tempfile.TemporaryDirectory() as tmp:
        good = os.path.join(tmp, "good")
        L.write_hf_folder(good, sd, spec.num_heads)
        r = L.check_hf_folder(good, sd, spec.num_heads)
        c.expect(not r["problems"], f"check_hf_folder accepts layout_v3's HF folder (on-disk 'layer.N.' names): "
                                    f"{r['problems'] or 'no missing/unexpected keys, tensors equal'}")
        back = L.hf_to_hub(load_file(os.path.join(good, "model.safetensors")), spec.num_heads)
        same = list(back) == list(sd) and all(
            torch.equal(back[k], sd[k] * sd.get(k + "_mask", torch.ones(1))) for k in sd)
        c.expect(same, "hf_to_hub(hub_to_hf(w)) == w in the official order (the key bias third -> 0)")
        bad = os.path.join(tmp, "bad")
        L.write_hf_folder(bad, sd, spec.num_heads)
        st = load_file(os.path.join(bad, "model.safetensors"))
        st.pop("layer.1.mlp.gate_proj.bias")
        st["layer.0.attention.k_proj.bias"] = torch.zeros(spec.embed_dim)
        save_file(st, os.path.join(bad, "model.safetensors"), metadata={"format": "pt"})
        r = L.check_hf_folder(bad, sd, spec.num_heads)
        found = any("missing" in p and "gate_proj.bias" in p for p in r["problems"]) and \
            any("unexpected" in p and "k_proj.bias" in p for p in r["problems"])
        c.expect(found, f"check_hf_folder reports a missing and an unexpected key: {r['problems'][:2]}")


# ---------------------------------------------------------------------------------------------
# Committed sets


def recompute(c, root: str, sets, official: str, picks=None) -> None:
    """The committed weights are the seeded ones (names and order exactly, values within the
    tolerance) and every case (or `picks`) recomputed from them by the set's truth matches the
    committed outputs within the tolerance of reproduce.py."""
    for spec in sets:
        folder = os.path.join(root, spec.folder)
        if not os.path.isfile(os.path.join(folder, "manifest.json")):
            if picks is None:
                c.expect(False, f"{spec.folder}: no manifest.json under {root}; run make-goldens first")
            else:
                c.skip(f"{spec.folder}: not in {root} (make-goldens --full {root} --only {spec.folder})")
            continue
        with open(os.path.join(folder, "manifest.json")) as f:
            manifest = json.load(f)
        c.expect(manifest.get("family") == V.FAMILY and manifest.get("num_heads") == spec.model.num_heads,
                 f"{spec.folder}: family {manifest.get('family')!r}, num_heads {manifest.get('num_heads')}")
        sd = V.seeded_state_dict(spec.model)
        stored = load_file(os.path.join(folder, manifest["weights"]))
        # safetensors writes its tensors sorted by name: the names are compared, not their order
        c.expect(sorted(stored) == sorted(sd), f"{spec.folder}: weight names == the official hub names")
        seeded = compare_arrays(f"{spec.folder}: weights vs the seeded state dict (goldens_v3.py)",
                                {k: v.numpy() for k, v in sd.items()}, {k: v.numpy() for k, v in stored.items()})
        c.expect(seeded.ok, seeded.detail())
        weights = type(sd)((k, stored[k]) for k in sd)
        ref = V.reference_for(spec, weights, official, allow_fallback=True)
        if spec.truth == "official" and not official:
            c.skip(f"{spec.folder}: recomputed with its truth, the official code (none given; "
                   f"{ref.name} instead)")
        by_name = {e["name"]: e for e in manifest["cases"]}
        for case in spec.cases:
            if picks is not None and case.name not in picks:
                continue
            entry = by_name[case.name]
            x, seed = V.case_input(spec, case)
            if isinstance(entry["input"], str):
                committed_x = np.load(os.path.join(folder, entry["input"]))
                c.expect(np.array_equal(committed_x, x), f"{spec.folder}/{case.name}: stored input == lcg({seed})")
            if "masks" in entry:
                c.expect(np.array_equal(np.load(os.path.join(folder, entry["masks"])), V.case_masks(spec, case)),
                         f"{spec.folder}/{case.name}: stored masks == the seeded masks")
            fresh = V.compute_case(spec, ref, case)
            committed = {key: np.load(os.path.join(folder, fn)) for key, fn in entry["outputs"].items()}
            v = compare_arrays(f"{spec.folder}/{case.name}: recomputed outputs ({ref.name}) vs committed",
                               fresh, committed)
            c.expect(v.ok, v.detail())


FULL_PICKS = ["x160x256"]


def run(c, golden_root: str, official: str, full_dir: str = "") -> dict:
    """The DINOv3 checks; returns the measured numbers (for the READMEs)."""
    numbers = {}
    print("DINOv3 cross-checks" + ("" if official else " (no official dinov3 code: those parts skipped)") + ":")
    check_layout(c, official)
    numbers["rope"] = check_rope(c, official)
    if full_dir:
        numbers["codes"] = cross_check_codes(c, official, [
            V.SetSpec(s.folder, s.model, s.truth, [k for k in s.cases if k.name in FULL_PICKS]) for s in V.full_sets()])
        print(f"DINOv3 golden sets in {full_dir}:")
        recompute(c, full_dir, V.full_sets(), official, FULL_PICKS)
        return numbers
    numbers["codes"] = cross_check_codes(c, official)
    numbers["traps"] = check_traps(c)
    check_interop(c)
    print(f"DINOv3 golden sets in {golden_root}:")
    recompute(c, golden_root, V.tiny_sets(), official)
    return numbers

