"""Scripts/bench-all --precisions: DinoKit at every precision its binary accepts, next to PyTorch's and
ONNX Runtime's own reduced-precision modes, each with its speed and its accuracy, as one table.

Engines (each a fresh process, as in the f32 table):
  DinoKit f32 / bf16 / int8      `dinokit bench|forward --precision P` (a precision the binary's
                                 `bench --help` does not list is reported as skipped);
  PyTorch f32 / bf16 / int8      Scripts/bench-pytorch --precision P (official DINOv2 module;
                                 autocast bf16; quantize_dynamic on nn.Linear);
  ONNX Runtime f32               Scripts/bench-onnxruntime on DinoKit's export;
  ONNX Runtime int8, quantize_dynamic of DinoKit's export / of torch's export
                                 bench-onnxruntime --quantize-dynamic [--torch-export]
                                 (torch.onnx.export of the official module: DINOv2 only);
  ONNX Runtime int8, DinoKit's int8 export   bench-onnxruntime --dtype int8 (`dinokit export-onnx
                                 --dtype int8`: DinoKit's int8 numerics as an ONNX graph; skipped
                                 when the binary's export-onnx has no int8).
Per engine:
  speed      ms/image (median) per batch size, GFLOP/s-equivalent = the f32 forward's FLOP count
             (bench.forward_flops, as `dinokit bench` counts it, whatever the precision) / time,
             peak RSS; rounds alternate all engines and take medians (bench_runs.combine), every run
             checked for other processes' CPU use;
  accuracy   on one seeded batch (normal pixels, --accuracy-batch images at --size): the engine's
             x_norm_clstoken and x_norm_patchtokens against the float32 official PyTorch model's
             (precision.compare: per-token cosine in float64, mean and least; max abs; max abs over
             max |reference|);
  probe      the CIFAR-format fixture through the same engine and precision on the tiny-plain model
             (precision_probe.score: LogisticRegression test accuracy, agreement with f32).
"""
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field

from .bench_runs import BenchFailed, child_cpu_seconds, clean_env, combine, cpu_flags, cpu_model, run_json

PRECISIONS = ("f32", "bf16", "int8")
# CPU features that decide which reduced-precision kernels can run.
FLAGS = ("avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8")


@dataclass
class Engine:
    name: str          # the table's first column
    precision: str
    bench: list        # argv prefix of the timed benchmark (before the shared options)
    forward: list      # argv prefix of one forward to .npz (before --weights ... --out)
    runtime: str       # "dinokit", "pytorch" or "onnxruntime": how forward's options are spelled
    skipped: str = ""  # why it did not run
    peer: bool = True  # another runtime's own precision mode (the targets compare DinoKit with these)
    description: str = ""
    reports: list = field(default_factory=list)
    accuracy: dict = field(default_factory=dict)
    probe: dict = field(default_factory=dict)


def listed_values(binary: str, command: str, option: str) -> list:
    """The values `dinokit COMMAND --help` lists for --OPTION (["f32"] when it lists none)."""
    text = subprocess.run([binary, command, "--help"], capture_output=True, text=True).stdout
    m = re.search(rf"\n +--{option} <{option}>(.*?)(?:\n  --|\Z)", text, re.S)  # OPTIONS, not USAGE
    if not m:
        return ["f32"]
    values = re.search(r"values:\s*([^;)]*)", m.group(1))  # "(values: f32, bf16; default: f32)"
    if values:
        return [v.strip() for v in values.group(1).split(",")]
    return list(dict.fromkeys(re.findall(r"\b(f32|f16|bf16|int8)\b", m.group(1)))) or ["f32"]  # "f32 or f16 (...)"


def engines(args, scripts: str, family: str) -> list:
    py, dk = sys.executable, args.dinokit
    pt, ort = os.path.join(scripts, "bench-pytorch"), os.path.join(scripts, "bench-onnxruntime")
    accepted = listed_values(dk, "bench", "precision")
    out = []
    for p in args.precisions:
        e = Engine("DinoKit", p, [dk, "bench", "--precision", p], [dk, "forward", "--precision", p], "dinokit")
        if p not in accepted:
            e.skipped = f"{os.path.basename(dk)} accepts --precision {', '.join(accepted)} only"
        out.append(e)
    for p in args.precisions:
        out.append(Engine("PyTorch", p, [py, pt, "--precision", p], [py, pt, "--precision", p], "pytorch"))
    for name, p, flags in (("ONNX Runtime", "f32", []),
                           ("ONNX Runtime, quantize_dynamic of DinoKit's export", "int8", ["--quantize-dynamic"]),
                           ("ONNX Runtime, quantize_dynamic of torch's export", "int8",
                            ["--quantize-dynamic", "--torch-export"]),
                           ("ONNX Runtime, DinoKit's int8 export", "int8", ["--dtype", "int8"])):
        if p not in args.precisions:
            continue
        argv = [py, ort, "--dinokit", dk] + flags
        e = Engine(name, p, argv, argv, "onnxruntime", peer="--dtype" not in flags)
        if "--torch-export" in flags and family != "dinov2":
            e.skipped = "torch.onnx.export here is of the official DINOv2 module (DINOv3 runs transformers')"
        if "--dtype" in flags and "int8" not in listed_values(dk, "export-onnx", "dtype"):
            e.skipped = f"{os.path.basename(dk)} export-onnx has no --dtype int8"
        out.append(e)
    return out


def measure_accuracy(es: list, args, work: str, env: dict) -> None:
    """precision_accuracy in a child process: Linux carries a process's peak RSS into the children
    it starts (over fork and exec), so torch, the pixels and the outputs loaded here would show in
    every benchmark's peak RSS."""
    job = {"weights": args.weights, "size": args.size, "threads": args.threads, "batch": args.accuracy_batch,
           "work": work, "engines": [{"name": e.name, "precision": e.precision, "forward": e.forward,
                                      "runtime": e.runtime, "skipped": e.skipped} for e in es]}
    path = os.path.join(work, f"accuracy.{os.path.splitext(os.path.basename(args.weights))[0]}.{args.size}.json")
    with open(path, "w") as f:
        json.dump(job, f)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "dinokit_ref.precision_accuracy", path], stdout=subprocess.PIPE,
                       text=True, env=dict(env, PYTHONPATH=here))
    if p.returncode != 0:
        raise SystemExit("the accuracy measurement failed (its messages above)")
    print(f"  accuracy: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    for e, got in zip(es, json.loads(p.stdout)):
        e.accuracy, e.probe, e.skipped = got["accuracy"], got["probe"], got["skipped"]


def time_engines(es: list, args, weights: str, env: dict) -> None:
    common = ["--weights", weights, "--batch", args.batch, "--size", str(args.size), "--threads",
              str(args.threads), "--warmup-seconds", str(args.warmup_seconds), "--json"]
    if args.iterations:
        common += ["--iterations", str(args.iterations)]
    child_cpu_seconds()
    for r in range(args.rounds):
        for e in es:  # every engine once per round: slow minutes hit all of them
            if e.skipped:
                continue
            t0 = time.perf_counter()
            try:
                e.reports.append(run_json(e.bench + common, env, args.max_noise, args.retries))
            except BenchFailed as failure:
                lines = [line for line in failure.stderr.strip().splitlines() if line.strip()]
                e.skipped = "failed: " + (lines[-1].strip() if lines else "no message")
            print(f"  round {r + 1}: {e.name} {e.precision} " + (e.skipped or f"done ({time.perf_counter() - t0:.0f} s)"),
                  file=sys.stderr)


def speed(e: Engine) -> dict:
    """{batch: combined result} (medians over rounds)."""
    return {row["batch"]: row for row in combine(e.reports)["results"]} if e.reports else {}


def targets(es: list, batches: list) -> list:
    """The issue's targets, each (text, met) from this run's medians."""
    def find(name, p):
        return next((e for e in es if e.name == name and e.precision == p and e.reports), None)

    def ms(e, b):
        return speed(e)[b]["ms_per_image_median"]

    def acc(e):  # (cls mean cosine, patch mean cosine, probe agreement): higher is better in each
        return (e.accuracy["cls"]["cosine_mean"], e.accuracy["patch"]["cosine_mean"], e.probe["agreement"])

    out = []
    f32 = find("DinoKit", "f32")
    peers = [e for e in es if e.name != "DinoKit" and e.peer and e.precision in ("bf16", "int8") and e.reports]
    int8_peers = [e for e in peers if e.precision == "int8"]
    for p, need, at in (("bf16", 1.7, [b for b in batches if b in (1, 8)]), ("int8", 2.5, [b for b in batches if b == 8])):
        listed = next((e for e in es if e.name == "DinoKit" and e.precision == p), None)
        if listed is None:  # not asked for
            continue
        mine = find("DinoKit", p)
        if mine is None or f32 is None:
            why = (listed if mine is None else next(e for e in es if e.name == "DinoKit" and e.precision == "f32")).skipped
            out.append((f"DinoKit {p}: not measured ({why})", False))
            continue
        for b in at:
            ratio = ms(f32, b) / ms(mine, b)
            out.append((f"DinoKit {p} batch {b}: {ratio:.2f}x DinoKit f32 (target >= {need}x)", ratio >= need))
        for b in batches:
            for peer in (peers if p == "bf16" else int8_peers):
                ratio = ms(peer, b) / ms(mine, b)
                out.append((f"DinoKit {p} batch {b}: {ratio:.2f}x {peer.name} {peer.precision} (target > 1x)",
                            ratio > 1))
        if p == "int8":
            for peer in int8_peers:
                a, c = acc(mine), acc(peer)
                better = all(x >= y for x, y in zip(a, c)) and a != c
                out.append((f"DinoKit int8 accuracy vs {peer.name} int8: cosine cls {a[0]:.6f} / {c[0]:.6f}, "
                            f"patch {a[1]:.6f} / {c[1]:.6f}, probe agreement {a[2]:.2f} / {c[2]:.2f} (target: better)",
                            better))
    return out


def cpu_id() -> str:
    """"family F model M stepping S" from /proc/cpuinfo: names the CPU generation when the model
    name does not (a VM's "Intel(R) Xeon(R) Processor")."""
    found = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("cpu family", "model", "stepping"):
                    found.setdefault(key.strip(), value.strip())
    except OSError:
        return ""
    return " ".join(f"{k.replace('cpu ', '')} {found[k]}" for k in ("cpu family", "model", "stepping") if k in found)


def machine(args) -> dict:
    flags = cpu_flags()
    return {"cpu": cpu_model(), "cpu_id": cpu_id(), "cores": os.cpu_count(), "threads": args.threads,
            "flags": {f: f in flags for f in FLAGS},
            "openblas_env": "OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for every engine"}


def fmt(v, spec):
    return "–" if v is None else format(v, spec)


def print_table(es: list, batches: list, m: dict, command: str, weights: str, variant: str, size: int) -> None:
    print(f"Machine: {m['cpu']} ({m['cpu_id']}), {m['cores']} cores, {m['threads']} threads; flags: " +
          " ".join(f"{f}{'' if on else ' (absent)'}" for f, on in m["flags"].items()) + f"; {m['openblas_env']}")
    print(f"Command: {command}  (weights {weights}, {variant} at {size}x{size})")
    print("Engines: " + "; ".join(f"{e.name} {e.precision}: {e.description}" for e in es if e.description))
    print()
    head = (["engine", "precision"] + [f"ms/image b{b}" for b in batches] + [f"GFLOP/s-eq b{b}" for b in batches] +
            ["peak RSS MB", "cls cosine mean / min", "patch cosine mean / min", "max abs cls / patch",
             "probe test acc", "agreement with f32"])
    print("| " + " | ".join(head) + " |")
    print("|---|---|" + "---:|" * (len(head) - 2))
    for e in es:
        if e.skipped and not e.reports:
            print(f"| {e.name} | {e.precision} | skipped: {e.skipped} |" + " |" * (len(head) - 3))
            continue
        s = speed(e)
        a, pr = e.accuracy, e.probe
        row = [e.name, e.precision]
        row += [fmt(s.get(b, {}).get("ms_per_image_median"), ".1f") for b in batches]
        row += [fmt(s.get(b, {}).get("gflops"), ".0f") for b in batches]
        row += [fmt(max((r["peak_rss_mb"] for r in s.values()), default=None), ".0f")]
        for key in ("cls", "patch"):
            row.append(f"{a[key]['cosine_mean']:.6f} / {a[key]['cosine_min']:.6f}" if a else "–")
        row.append(f"{a['cls']['max_abs']:.3g} / {a['patch']['max_abs']:.3g}" if a else "–")
        row += [fmt(pr.get("test_accuracy"), ".2f"), fmt(pr.get("agreement"), ".2f")]
        print("| " + " | ".join(row) + " |")


def run(args, scripts: str, root: str, command: str) -> None:
    from .bench import read_shapes, shape_of

    shapes, metadata = read_shapes(args.weights)
    shape = shape_of(shapes, metadata.get("num_heads"))
    batches = [int(b) for b in args.batch.split(",")]
    work = os.path.join(root, "reference", "bench", "precision")
    os.makedirs(work, exist_ok=True)
    env = clean_env()
    es = engines(args, scripts, shape["family"])
    measure_accuracy(es, args, work, env)
    time_engines(es, args, args.weights, env)
    for e in es:
        if e.reports:
            first = e.reports[0]
            e.description = first.get("engine") or f"dinokit bench ({first.get('gemm_kernel', '')})"
    m = machine(args)
    goals = targets(es, batches)
    noise = {f"{e.name} {e.precision}": max((r["noise"] or 0) for r in e.reports) for e in es if e.reports}
    weights = os.path.relpath(args.weights, root)
    if args.json:
        print(json.dumps({
            "machine": m, "command": command, "weights": weights, "variant": shape["variant"], "size": args.size,
            "engines": [{"name": e.name, "precision": e.precision, "engine": e.description, "skipped": e.skipped,
                         "results": [speed(e)[b] for b in batches if b in speed(e)], "accuracy": e.accuracy,
                         "probe": e.probe} for e in es],
            "noise": noise, "targets": [{"target": t, "met": ok} for t, ok in goals]}, indent=2, sort_keys=True))
        return
    print_table(es, batches, m, command, weights, shape["variant"], args.size)
    print()
    print("Other processes' share of the CPU during the runs (largest over rounds): " +
          ", ".join(f"{n} {100 * v:.0f}%" for n, v in noise.items()))
    for text, ok in goals:
        print(f"{'met    ' if ok else 'NOT MET'}  {text}")
