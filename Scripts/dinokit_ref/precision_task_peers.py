"""The precision set of Scripts/probe-check (reference/probe-precision, made by its first run) through
other implementations of the reduced precisions, scored as probe-check scores DinoKit: the official
pipeline's pixels (torchvision CIFAR10 -> Resize(224, bicubic) -> ToTensor -> Normalize) through the
official tiny-plain model under PyTorch's autocast bf16 and quantize_dynamic int8 (precision.torch_at,
bench-all's peers) and with DinoKit's int8 rule in NumPy (int8_ref.quantize_module); sklearn's
LogisticRegression(max_iter=1000) and the NumPy k-NN on their cls features, against the official f32
results in the set's reference.json. The second table of docs/precision-task-accuracy.md. Then the
spread of chance: the official features plus isotropic noise at bf16's and int8's cosine (relative
size 0.0055 and 0.0144), 20 seeds, logistic regression only: how often the issue's bounds hold.

  PYTHONPATH=Scripts .venv/bin/python -m dinokit_ref.precision_task_peers [SET]
"""
import contextlib
import importlib.util
import json
import os
import sys

import numpy as np

from . import compat  # noqa: F401 - before torchvision
from . import precision
from .int8_ref import quantize_module
from .probe_ref import fit_sklearn, knn_reference, row_cosines, with_noise

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def fixtures_probe():
    """Scripts/fixtures/probe.py as a module: the set's reader, transform and model."""
    spec = importlib.util.spec_from_file_location("fixtures_probe", os.path.join(ROOT, "Scripts", "fixtures", "probe.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(folder: str) -> None:
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(1)
    fx = fixtures_probe()
    ref = json.load(open(os.path.join(folder, "reference.json")))
    n = ref["train_count"]
    ytr, yte = np.array(ref["train_labels"]), np.array(ref["test_labels"])
    official = np.concatenate([np.load(os.path.join(folder, ref["features"][s])) for s in ("train", "test")])
    tf = fx.cifar_transform()
    splits = [fx.FixtureCIFAR10(folder, train=t, transform=tf) for t in (True, False)]
    pixels = [split[i][0] for split in splits for i in range(len(split))]

    def cls_features(model, context):
        out = []
        with torch.no_grad(), context():
            for i in range(0, len(pixels), 50):
                out.append(model(torch.stack(pixels[i:i + 50])).float().numpy())
        return np.concatenate(out).astype(np.float32)

    def report(name, X):
        cos = row_cosines(X, official)
        clf, _ = fit_sklearn(X[:n], ytr, 1000)
        logreg = clf.predict(X[n:])
        knn, _ = knn_reference(X[:n], ytr, X[n:], [r["k"] for r in ref["knn"]], 0.07)
        changed = [int((logreg != np.array(ref["logreg_test_predictions"])).sum())]
        changed += [int((p != np.array(q)).sum()) for p, q in zip(knn, ref["knn_predictions"])]
        print(f"| {name} | {cos.mean():.6f} / {cos.min():.6f} | {100 * clf.score(X[:n], ytr):.1f} | "
              f"{100 * (logreg == yte).mean():.1f} | " + " | ".join(f"{100 * (p == yte).mean():.1f}" for p in knn)
              + f" | {', '.join(map(str, changed))} |", flush=True)

    f32, _ = precision.torch_at(fx.tiny_model(), "f32")
    drift = float(np.abs(cls_features(f32, contextlib.nullcontext) - official).max())
    assert drift == 0, f"the official f32 features are not the set's ({drift:.2g}): remake the set"
    report("PyTorch autocast bf16", cls_features(*precision.torch_at(fx.tiny_model(), "bf16")))
    rule = fx.tiny_model()
    quantize_module(rule)
    report("DinoKit's int8 rule in NumPy (int8_ref.py)", cls_features(rule, contextlib.nullcontext))
    report("PyTorch quantize_dynamic int8", cls_features(*precision.torch_at(fx.tiny_model(), "int8")))

    for rel in (0.0055, 0.0144):
        train, test, changed = [], [], []
        for seed in range(20):
            X = with_noise(official, rel, seed)
            clf, _ = fit_sklearn(X[:n], ytr, 1000)
            logreg = clf.predict(X[n:])
            train.append(round(100 * (clf.score(X[:n], ytr) - ref["logreg"]["train_accuracy"]), 1))
            test.append(round(float(100 * ((logreg == yte).mean() - ref["logreg"]["test_accuracy"])), 1))
            changed.append(int((logreg != np.array(ref["logreg_test_predictions"])).sum()))
        within = sum(abs(a) <= 0.2 + 1e-9 and abs(b) <= 0.2 + 1e-9 and c <= 0.01 * len(yte) for a, b, c in zip(train, test, changed))
        print(f"noise {rel}, 20 seeds: logreg train points {sorted(train)}, test points {sorted(test)}, "
              f"changed {sorted(changed)}; within the bounds {within} of 20")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "reference", "probe-precision"))
