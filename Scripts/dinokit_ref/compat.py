"""Make torchvision importable next to the CPU build of torch.

PyPI's torchvision wheel is built against CUDA torch and registers fake kernels for
`torchvision::nms` and `torchvision::qnms` at import time; with the CPU torch that operator schema does not exist and
the import fails. Defining the schema first (no implementation needed: we never call nms) lets
timm, which imports torchvision, load. Import this module before timm or torchvision.

It also quiets the official code's import-time "xFormers not available" lines: the fallbacks they
announce are exactly what DinoKit is compared with, so every report would only repeat them.
"""
import logging

import torch

logging.getLogger("dinov2").setLevel(logging.ERROR)

_lib = None
try:
    torch.ops.torchvision.nms  # noqa: B018 - probe
except (AttributeError, RuntimeError):
    _lib = torch.library.Library("torchvision", "DEF")
    _lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
