"""Running benchmark processes as Scripts/bench-all does: a user's OpenBLAS environment, each child
checked for other processes' CPU use meanwhile, rounds combined by medians, and the machine named."""
import json
import os
import statistics
import subprocess
import sys
import time

UNSET = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env.update(extra)
    return env


class BenchFailed(SystemExit):
    """A benchmark process that exited with an error; uncaught, it ends the script with its message."""

    def __init__(self, message: str, stderr: str):
        super().__init__(message)
        self.stderr = stderr


def busy_seconds():
    """CPU seconds all processes have spent busy so far (Linux /proc/stat; None elsewhere)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def run_json(argv, env, max_noise=None, retries=0) -> dict:
    """Runs a benchmark; returns its JSON report with "noise" added: the share of the machine's CPU
    that other processes used meanwhile (busy CPU time minus the child's own, over wall time ×
    cores). With max_noise, reruns up to `retries` times while the noise is above it."""
    for attempt in range(retries + 1):
        if max_noise is not None:
            wait_until_idle(max_noise)
        b0, t0 = busy_seconds(), time.perf_counter()
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        out, err = p.communicate()
        wall, b1 = time.perf_counter() - t0, busy_seconds()
        if p.returncode != 0:
            raise BenchFailed(f"{' '.join(argv)} failed:\n{err}", err)
        report = json.loads(out)
        noise = None
        if b0 is not None and b1 is not None:
            own = child_cpu_seconds()
            noise = max(0.0, (b1 - b0 - own) / (wall * (os.cpu_count() or 1)))
        report["noise"] = noise
        if max_noise is None or noise is None or noise <= max_noise:
            break
        print(f"  ({os.path.basename(argv[0])}: other processes used {100 * noise:.0f}% of the CPU; rerunning)",
              file=sys.stderr)
    return report


def wait_until_idle(max_busy: float, timeout: float = 600) -> None:
    """Waits (up to `timeout` s) until the whole machine was busy at most `max_busy` of the time
    over two consecutive seconds."""
    end = time.time() + timeout
    quiet = 0
    while time.time() < end and quiet < 2:
        b0 = busy_seconds()
        if b0 is None:
            return
        time.sleep(1)
        busy = (busy_seconds() - b0) / (os.cpu_count() or 1)
        quiet = quiet + 1 if busy <= max_busy else 0


_children_cpu = [0.0]


def child_cpu_seconds() -> float:
    """CPU seconds of children reaped since the last call."""
    import resource

    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = u.ru_utime + u.ru_stime
    delta, _children_cpu[0] = total - _children_cpu[0], total
    return delta


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def cpu_flags() -> set:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def combine(reports: list) -> dict:
    """Per batch: median of the rounds' medians (and of min, max, rates), largest peak RSS."""
    out = {k: v for k, v in reports[0].items() if k != "noise"}
    results = []
    for i, first in enumerate(reports[0]["results"]):
        rows = [r["results"][i] for r in reports]
        row = {"batch": first["batch"]}
        for key in ("ms_per_image_median", "ms_per_image_min", "ms_per_image_max", "images_per_second", "gflops"):
            row[key] = statistics.median(r[key] for r in rows)
        row["peak_rss_mb"] = max(r["peak_rss_mb"] for r in rows)
        results.append(row)
    out["results"] = results
    return out
