"""Shared pieces of the forward benchmarks (Scripts/bench-pytorch, Scripts/bench-onnxruntime,
Scripts/bench-all): the same options, warm-up, timing policy, FLOP count and JSON report as
`dinokit bench`, so the three print comparable numbers.

Report (`--json`), as `dinokit bench --json` prints it:
  {"variant", "size", "threads", "results": [{"batch", "ms_per_image_median", "ms_per_image_min",
   "ms_per_image_max", "images_per_second", "gflops", "peak_rss_mb"}]}
(the Python benchmarks add "engine": what ran, e.g. the PyTorch version and attention implementation).

Both families: DINOv2 (patch 14, pos_embed, optional register_tokens) and DINOv3 (patch 16, RoPE,
no pos_embed, storage_tokens counted like registers: 1 + 4 prefix tokens).
"""
import argparse
import json
import resource
import statistics
import sys
import time

VARIANTS = {
    # name: (embed_dim, depth, ffn hidden, swiglu)
    "dinov2_vits14": (384, 12, 1536, False),
    "dinov2_vitb14": (768, 12, 3072, False),
    "dinov2_vitl14": (1024, 24, 4096, False),
    "dinov2_vitg14": (1536, 40, 4096, True),
}

VARIANTS_V3 = {
    # name: (embed_dim, depth, ffn hidden, swiglu); patch 16, 4 storage tokens (Formats/BackboneArchitecture.swift)
    "dinov3_vits16": (384, 12, 1536, False),
    "dinov3_vits16plus": (384, 12, 1536, True),
    "dinov3_vitb16": (768, 12, 3072, False),
    "dinov3_vitl16": (1024, 24, 4096, False),
    "dinov3_vitl16plus": (1024, 24, 4096, True),
    "dinov3_vith16plus": (1280, 32, 5120, True),
    "dinov3_vit7b16": (4096, 40, 8192, True),
}


def arguments(description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--weights", help="hub-layout .safetensors (as Scripts/make-goldens or dinokit convert write)")
    ap.add_argument("--random-weights", metavar="VARIANT", help="instead of --weights: seeded random weights of a "
                    "hub variant without registers (dinov2_vits14, ...)")
    ap.add_argument("--batch", default="1,8,32", help="comma-separated batch sizes (default 1,8,32)")
    ap.add_argument("--size", type=int, default=224, help="image side in pixels (default 224)")
    ap.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all cores)")
    ap.add_argument("--iterations", type=int, default=None,
                    help="timed forwards per batch size (default: at least 5 and about 3 s)")
    ap.add_argument("--warmup-seconds", type=float, default=4.0, help="untimed forwards first (default 4)")
    ap.add_argument("--json", action="store_true", help="print the JSON report")
    return ap


def batch_sizes(text: str) -> list:
    sizes = [int(s) for s in text.split(",") if s.strip()]
    if not sizes or any(b <= 0 for b in sizes):
        raise SystemExit(f"--batch must be positive integers, not {text!r}")
    return sizes


def read_shapes(path: str):
    """({name: shape tuple}, metadata) of a .safetensors file, from its header only (no tensor is
    read, so this costs the calling benchmark no memory)."""
    from safetensors import safe_open

    with safe_open(path, framework="numpy") as f:
        return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}, dict(f.metadata() or {})


def family_of(state) -> str:
    """"dinov3" for the DINOv3 hub layout (storage_tokens, RoPE: no pos_embed), else "dinov2"."""
    return "dinov3" if "storage_tokens" in state or "pos_embed" not in state else "dinov2"


def shape_of(state, num_heads=None) -> dict:
    """Architecture of a hub-layout state dict (names as torch.hub's dinov2 / dinov3 models). Values
    may be tensors, arrays or shape tuples (read_shapes). num_heads: the file's `num_heads` metadata
    when there is one, else D/64 (every released variant), as DinoKit does."""
    def dims(name):
        v = state[name]
        return tuple(v.shape) if hasattr(v, "shape") else tuple(v)

    family = family_of(state)
    d, _, p, _ = dims("patch_embed.proj.weight")
    depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
    heads = int(num_heads) if num_heads else d // 64
    if family == "dinov3":
        swiglu = "blocks.0.mlp.w1.weight" in state
        hidden = dims("blocks.0.mlp.w1.weight" if swiglu else "blocks.0.mlp.fc1.weight")[0]
        registers = dims("storage_tokens")[1] if "storage_tokens" in state else 0
        variant = "custom"
        for name, (vd, vdepth, vhidden, vswiglu) in VARIANTS_V3.items():
            if (d, depth, hidden, swiglu, p, registers) == (vd, vdepth, vhidden, vswiglu, 16, 4):
                variant = name
        return dict(family=family, embed_dim=d, depth=depth, hidden=hidden, swiglu=swiglu, patch=p, grid=None,
                    registers=registers, num_heads=heads, variant=variant)
    swiglu = "blocks.0.mlp.w12.weight" in state
    hidden = dims("blocks.0.mlp.w3.weight")[1] if swiglu else dims("blocks.0.mlp.fc1.weight")[0]
    grid = int(round((dims("pos_embed")[1] - 1) ** 0.5))
    registers = dims("register_tokens")[1] if "register_tokens" in state else 0
    variant = "custom"
    for name, (vd, vdepth, vhidden, vswiglu) in VARIANTS.items():
        if (d, depth, hidden, swiglu, p, grid) == (vd, vdepth, vhidden, vswiglu, 14, 37):
            variant = name + ("_reg" if registers == 4 else "")
    return dict(family=family, embed_dim=d, depth=depth, hidden=hidden, swiglu=swiglu, patch=p, grid=grid,
                registers=registers, num_heads=heads, variant=variant)


def forward_flops(shape: dict, size: int) -> float:
    """FLOPs of one image's forward, counted as `dinokit bench` counts them (forwardFLOPs in
    Sources/dinokit/Bench.swift; a multiply-add is 2): patch embedding, and per block qkv, attention
    (2 · 2 · N² · D), proj and MLP/SwiGLU, with N = patches + 1 + registers (DINOv3: + 4 storage
    tokens; its RoPE is not counted, as there)."""
    p, d, h = shape["patch"], shape["embed_dim"], shape["hidden"]
    patches = (size // p) ** 2
    n = patches + 1 + shape["registers"]
    patch_embed = 2 * patches * 3 * p * p * d
    ffn = (2 * n * d * 2 * h + 2 * n * h * d) if shape["swiglu"] else 2 * n * d * h * 2
    block = 2 * n * d * 3 * d + 4 * n * n * d + 2 * n * d * d + ffn
    return float(patch_embed + shape["depth"] * block)


def peak_rss_mb() -> float:
    """The process's peak resident set so far, MB of 2^20 bytes (Linux reports KiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024.0 if sys.platform != "darwin" else kib / 1048576.0


def run(forward, inputs: dict, batches: list, shape: dict, size: int, threads: int, iterations, warmup: float) -> dict:
    """Warms up with the first batch size for `warmup` seconds, then per batch size one untimed
    forward and the timed ones; returns the report."""
    flops = forward_flops(shape, size)
    if warmup > 0:
        end = time.perf_counter() + warmup
        while time.perf_counter() < end:
            forward(inputs[batches[0]])
    results = []
    for b in batches:
        x = inputs[b]
        forward(x)
        seconds = []
        started = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            forward(x)
            seconds.append(time.perf_counter() - t0)
            if iterations is not None:
                if len(seconds) >= iterations:
                    break
            elif len(seconds) >= 5 and (time.perf_counter() - started >= 3 or len(seconds) >= 200):
                break
        median = statistics.median(seconds)
        results.append({
            "batch": b,
            "ms_per_image_median": median * 1000 / b,
            "ms_per_image_min": min(seconds) * 1000 / b,
            "ms_per_image_max": max(seconds) * 1000 / b,
            "images_per_second": b / median,
            "gflops": flops * b / median / 1e9,
            "peak_rss_mb": peak_rss_mb(),
        })
    return {"variant": shape["variant"], "size": size, "threads": threads, "results": results}


def print_report(report: dict, as_json: bool, engine: str) -> None:
    report = dict(report, engine=engine)
    if as_json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return
    print(f"{engine}: {report['variant']} at {report['size']}x{report['size']}, {report['threads']} threads")
    print(f"{'batch':>5}  {'ms/image median':>15}  {'min':>7}  {'max':>7}  {'images/s':>8}  {'GFLOP/s':>7}  {'peak RSS MB':>11}")
    for r in report["results"]:
        print(f"{r['batch']:>5}  {r['ms_per_image_median']:>15.2f}  {r['ms_per_image_min']:>7.2f}  "
              f"{r['ms_per_image_max']:>7.2f}  {r['images_per_second']:>8.1f}  {r['gflops']:>7.1f}  {r['peak_rss_mb']:>11.0f}")
