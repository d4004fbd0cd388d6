"""The accuracy columns of bench-all's precision table, measured the same way for every engine.

  python -m dinokit_ref.precision_accuracy JOB.json   (PYTHONPATH=Scripts; bench_precision writes JOB)

JOB: {"weights", "size", "threads", "batch", "work" (a folder for inputs and outputs), "engines":
[{"name", "precision", "forward" (argv prefix), "runtime" (dinokit | pytorch | onnxruntime),
"skipped"}]}. Every engine's forward runs in its own process on one .npy and writes an .npz
(`dinokit forward --input X --out O`, `bench-pytorch|bench-onnxruntime --input X --out O`):
  outputs  a seeded batch (numpy default_rng(7), standard normal pixels, `batch` images at `size`)
           on the weights; x_norm_clstoken and x_norm_patchtokens compared with the PyTorch f32
           engine's (precision.compare);
  probe    the CIFAR fixture's official pixels on the tiny-plain model (precision_probe.score).
Prints, on stdout, one {"accuracy", "probe", "skipped"} per engine, in order; progress on stderr.
"""
import json
import os
import subprocess
import sys

import numpy as np

from . import precision, precision_probe


class Failed(Exception):
    pass


def forward_to(engine: dict, weights: str, size: int, threads: int, x: str, out: str) -> dict:
    """{output: array} of one forward of `engine` on the .npy `x`."""
    argv = engine["forward"] + ["--weights", weights, "--input", x, "--out", out, "--threads", str(threads)]
    if engine["runtime"] != "dinokit":  # dinokit forward takes the size from the input
        argv += ["--size", str(size)]
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode != 0:
        lines = [line for line in p.stderr.strip().splitlines() if line.strip()]
        raise Failed("failed: " + (lines[-1].strip() if lines else f"exit status {p.returncode}"))
    with np.load(out) as z:
        return {k: z[k] for k in precision.OUTPUTS}


def main(job_path: str) -> None:
    with open(job_path) as f:
        job = json.load(f)
    work, size, threads = job["work"], job["size"], job["threads"]
    # This model's outputs in a folder of their own; the CIFAR pixels and the tiny model's exports shared.
    mine = os.path.join(work, f"{os.path.splitext(os.path.basename(job['weights']))[0]}.{size}")
    os.makedirs(mine, exist_ok=True)
    x = os.path.join(work, f"input.{size}.b{job['batch']}.npy")
    if not os.path.exists(x):
        rng = np.random.default_rng(7)
        np.save(x, rng.standard_normal((job["batch"], 3, size, size), dtype=np.float32))
    pixels = os.path.join(work, "cifar.224.npy")
    if not os.path.exists(pixels):
        precision_probe.write_pixels(pixels)
    tiny = os.path.join(work, "tiny-plain.safetensors")  # exports and int8 graphs go beside it, not in Fixtures
    if not os.path.lexists(tiny):
        os.symlink(precision_probe.WEIGHTS, tiny)
    engines = job["engines"]
    truth = next(e for e in engines if e["runtime"] == "pytorch" and e["precision"] == "f32")
    ref = forward_to(truth, job["weights"], size, threads, x, os.path.join(mine, "reference.npz"))
    results = []
    for i, e in enumerate(engines):
        got = {"accuracy": {}, "probe": {}, "skipped": e["skipped"]}
        results.append(got)
        if e["skipped"]:
            continue
        try:
            out = forward_to(e, job["weights"], size, threads, x, os.path.join(mine, f"out.{i}.npz"))
            got["accuracy"] = {"cls": precision.compare(out["x_norm_clstoken"], ref["x_norm_clstoken"]),
                               "patch": precision.compare(out["x_norm_patchtokens"], ref["x_norm_patchtokens"])}
            feats = forward_to(e, tiny, 224, threads, pixels, os.path.join(mine, f"cifar.{i}.npz"))
            got["probe"] = precision_probe.score(feats["x_norm_clstoken"])
            if e is truth and got["probe"]["feature_max_abs"] > 1e-4:  # the pixels are not the official ones
                raise SystemExit(f"PyTorch f32 on {pixels} is {got['probe']['feature_max_abs']:.2g} from "
                                 "Fixtures/cifar/reference.*.npy: the fixture's pipeline changed?")
        except Failed as failure:
            got["skipped"] = str(failure)
        a, pr = got["accuracy"], got["probe"]
        print(f"  accuracy {e['name']} {e['precision']}: " + (got["skipped"] or
              f"cls cosine {a['cls']['cosine_mean']:.6f}, patch {a['patch']['cosine_mean']:.6f}, "
              f"probe {pr['test_accuracy']:.2f} (agreement {pr['agreement']:.2f})"), file=sys.stderr)
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1])
