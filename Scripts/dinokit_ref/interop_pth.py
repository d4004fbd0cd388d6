"""Interop check for DinoKit's .pth writer: the real consumer, torch.load(weights_only=True), must
accept the file and give tensors bit-identical to the source, laid out as torch lays them out.

    check_pth(path_written_by_dinokit, reference_state_dict)   # raises on any mismatch

When the reference is a DINOv2 backbone in hub layout, the loaded dict is also put into the official
model with load_state_dict(strict=True) (the model is built from the tensor shapes; register models
get the hub's `register_tokens` parameter, which the PyPI snapshot of the official code predates).
Pass `model=` to load into a module of your own instead.

Run as a script, it does the whole round trip for the tiny DINOv2: torch.save(tiny_state_dict) ->
DinoKit reads and rewrites it (`dinokit convert in.pth out.pth`) -> torch.load +
load_state_dict(strict=True) into the official model.

    interop_pth.py [PATH_TO_DINOKIT]      (default .build/debug/dinokit)"""
import os
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections import OrderedDict


def _bytes(t):
    return t.detach().contiguous().reshape(-1).view(__import__("torch").uint8).numpy().tobytes()


def check_pth(path, reference_state_dict, model=None) -> None:
    import torch

    loaded = torch.load(path, weights_only=True, map_location="cpu")
    if not isinstance(loaded, OrderedDict):
        raise AssertionError(f"{path}: top-level object is {type(loaded).__name__}, expected an OrderedDict state dict")
    if list(loaded.keys()) != list(reference_state_dict.keys()):
        missing = [k for k in reference_state_dict if k not in loaded]
        extra = [k for k in loaded if k not in reference_state_dict]
        raise AssertionError(f"{path}: keys differ (order or set); missing {missing[:5]}, unexpected {extra[:5]}")
    for name, ref in reference_state_dict.items():
        got = loaded[name]
        if got.dtype != ref.dtype or tuple(got.shape) != tuple(ref.shape):
            raise AssertionError(f"{path}: {name} is {got.dtype} {tuple(got.shape)}, expected {ref.dtype} {tuple(ref.shape)}")
        if _bytes(got) != _bytes(ref):
            raise AssertionError(f"{path}: {name} values differ")
    if not hasattr(loaded, "_metadata"):
        raise AssertionError(f"{path}: the state dict has no _metadata (torch writes one)")

    # Layout as torch writes it: one root folder, data.pkl first, storages STORED and 64-byte aligned.
    raw = open(path, "rb").read()
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
        root = infos[0].filename.split("/")[0]
        if infos[0].filename != f"{root}/data.pkl":
            raise AssertionError(f"{path}: first entry is {infos[0].filename}")
        if z.read(f"{root}/byteorder") != b"little":
            raise AssertionError(f"{path}: byteorder is not little")
        for info in infos:
            if not info.filename.startswith(root + "/"):
                raise AssertionError(f"{path}: entry {info.filename} outside the root folder")
            if info.compress_type != zipfile.ZIP_STORED:
                raise AssertionError(f"{path}: {info.filename} is compressed")
            h = info.header_offset
            n, m = struct.unpack("<HH", raw[h + 26:h + 30])
            if "/data/" in info.filename and (h + 30 + n + m) % 64 != 0:
                raise AssertionError(f"{path}: {info.filename} data is not 64-byte aligned")
        if z.testzip() is not None:
            raise AssertionError(f"{path}: CRC mismatch")

    if model is None:
        model = official_model_for(reference_state_dict)
    if model is not None:
        model.load_state_dict(loaded, strict=True)


def official_model_for(state_dict):
    """The official DinoVisionTransformer whose state dict has these names and shapes, or None when
    the dict is not a hub-layout DINOv2 backbone. num_heads does not change any shape: 1 is used."""
    import torch

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from dinokit_ref.models import official_backbone

    if "patch_embed.proj.weight" not in state_dict or "pos_embed" not in state_dict:
        return None
    dim, _, patch, _ = state_dict["patch_embed.proj.weight"].shape
    grid = round((state_dict["pos_embed"].shape[1] - 1) ** 0.5)
    depth = 0
    while f"blocks.{depth}.norm1.weight" in state_dict:
        depth += 1
    ffn = "swiglufused" if "blocks.0.mlp.w12.weight" in state_dict else "mlp"
    model = official_backbone(embed_dim=dim, depth=depth, num_heads=1, img_size=grid * patch, ffn_layer=ffn)
    if "register_tokens" in state_dict:
        model.register_tokens = torch.nn.Parameter(torch.zeros_like(state_dict["register_tokens"]))
    return model


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    sys.path.insert(0, os.path.dirname(here))
    import torch
    from dinokit_ref.models import TINY, official_backbone, tiny_state_dict

    sd = tiny_state_dict("tiny-plain")
    with tempfile.TemporaryDirectory() as tmp:
        source, written = f"{tmp}/tiny-plain.pth", f"{tmp}/tiny-plain-dinokit.pth"
        torch.save(sd, source)
        dinokit = sys.argv[1] if len(sys.argv) > 1 else os.path.join(repo, ".build", "debug", "dinokit")
        run = subprocess.run([dinokit, "convert", source, written], cwd=repo, capture_output=True, text=True)
        if run.returncode != 0 or not os.path.exists(written):
            sys.stderr.write(run.stdout + run.stderr)
            raise AssertionError("DinoKit could not rewrite the checkpoint")
        model = official_backbone(**TINY["tiny-plain"])
        check_pth(written, sd, model=model)
        check_pth(written, sd)  # the model inferred from the shapes loads it too
        # The loaded model computes what the original computes.
        reference = official_backbone(**TINY["tiny-plain"])
        reference.load_state_dict(sd, strict=True)
        x = torch.randn(1, 3, 28, 28, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            if not torch.equal(model(x), reference(x)):
                raise AssertionError("outputs differ")
    print("interop_pth: torch.load(weights_only=True) + load_state_dict(strict=True) accept DinoKit's .pth; tensors identical")


if __name__ == "__main__":
    main()
