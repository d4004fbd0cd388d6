"""Task accuracy of an engine at a precision: the CIFAR-format fixture (Fixtures/cifar, 150 images of
32x32) through the official tiny-plain model, cls features, sklearn LogisticRegression.

The pixels are the official pipeline's (torchvision CIFAR10 -> Resize(224, bicubic) -> ToTensor ->
Normalize(CIFAR mean/std), as Scripts/fixtures/probe.py made reference.json), computed once here and
handed to every engine as one float32 (150, 3, 224, 224) .npy, so only the model's arithmetic
differs between engines. The score (`score`) is what reference.json holds for the official f32
features: LogisticRegression(max_iter=1000) fitted on the 100 training images, accuracy on the 50
test images; and the agreement: the share of test images whose predicted class equals the one
predicted from the official f32 features (reference.json's logreg_test_predictions).
"""
import json
import os

import numpy as np

from .probe_ref import fit_sklearn

HERE = os.path.dirname(os.path.abspath(__file__))
CIFAR = os.path.join(os.path.dirname(os.path.dirname(HERE)), "Fixtures", "cifar")
WEIGHTS = os.path.join(os.path.dirname(CIFAR), "golden", "tiny-plain", "model.safetensors")
MEAN_STD = ([0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616])


def reference() -> dict:
    with open(os.path.join(CIFAR, "reference.json")) as f:
        return json.load(f)


def write_pixels(out: str) -> None:
    """The official pipeline's input tensor of the 100 training then 50 test images, as float32 .npy."""
    from . import compat  # noqa: F401 - before torchvision
    import torch
    import torchvision
    from torchvision import transforms as T

    class FixtureCIFAR10(torchvision.datasets.CIFAR10):
        meta = {"filename": "batches.meta", "key": "label_names", "md5": None}

        def _check_integrity(self):  # the checksums are the real dataset's
            return True

    tf = T.Compose([T.Resize(224, interpolation=T.InterpolationMode.BICUBIC), T.ToTensor(), T.Normalize(*MEAN_STD)])
    ref = reference()
    images = []
    for train, labels in ((True, ref["train_labels"]), (False, ref["test_labels"])):
        data = FixtureCIFAR10(CIFAR, train=train, transform=tf)
        assert data.targets == labels, "the fixture's labels differ from reference.json's"
        images += [data[i][0] for i in range(len(data))]
    tmp = out + ".tmp.npy"
    np.save(tmp, torch.stack(images).numpy().astype(np.float32))
    os.replace(tmp, out)


def score(features: np.ndarray) -> dict:
    """LogisticRegression test accuracy of (150, D) cls features, agreement of its test predictions
    with the official f32 features', and the features' largest distance from those."""
    ref = reference()
    ytr, yte = np.array(ref["train_labels"]), np.array(ref["test_labels"])
    n = len(ytr)
    official = np.concatenate([np.load(os.path.join(CIFAR, ref["features"][s])) for s in ("train", "test")])
    clf, _ = fit_sklearn(features[:n].astype(np.float32), ytr, 1000)
    predicted = clf.predict(features[n:].astype(np.float32))
    return {"test_accuracy": float((predicted == yte).mean()),
            "agreement": float((predicted == np.array(ref["logreg_test_predictions"])).mean()),
            "official_test_accuracy": ref["logreg"]["test_accuracy"],
            "feature_max_abs": float(np.abs(features.astype(np.float64) - official).max())}
