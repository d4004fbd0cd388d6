#!/usr/bin/env python3
"""A whole `dinokit train ssl` run redone with the official dinov2 pieces, for curve shapes.

Given a DinoKit run config (`run/config.json`, the resolved values dinokit writes), the hub
weights the run started from and its image folder, this trains the same backbone the way
dinov2/train/train.py `do_train` does, on one CPU process:
- data: the official `DataAugmentationDINO` (PIL RGB images, as the official ImageNet loader
  gives them), batches of a per-epoch seeded shuffle (one epoch = one pass, DinoKit's
  definition), collated by `collate_data_and_cast` with train.py's `MaskingGenerator`;
- model, losses, optimiser, clipping, EMA: `sslstep.SSLStep` (DINOHead with its own init,
  DINOLoss/iBOTPatchLoss/KoLeoLoss called as SSLMetaArch.forward_backward calls them,
  param_groups + AdamW), with the backbone swapped for the official module loaded with the
  run's weights (its 37x37 position table interpolated to the crops, as in DinoKit);
- schedules: train.py `build_schedulers` (its source run without fvcore), applied per
  iteration as `apply_optim_scheduler` does, `cfg.optim.lr` = the run's resolved lr.

RNG streams differ from DinoKit's (crops, masks, shuffles, head init), so single steps do not
match; epoch means of the loss and of the teacher entropy should, within noise.

Usage:
  ssl_run_ref.py --config RUN/config.json --weights tiny.pth --data IMAGES [--out ref.jsonl]
                 [--compare RUN] [--seed N] [--threads N]
"""
import argparse
import json
import logging
import os
import random
import sys
import time
from functools import partial

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from dinokit_ref import compat  # noqa: E402,F401 - torchvision's nms schema before dinov2.data
from dinokit_ref import sslstep  # noqa: E402
from dinokit_ref.schedules import official_schedules  # noqa: E402
from dinokit_ref.models import TINY, official_backbone  # noqa: E402


def preset(c, model_cfg):
    return sslstep.Preset(
        name="run", embed_dim=model_cfg["embed_dim"], depth=model_cfg["depth"], num_heads=model_cfg["num_heads"],
        global_size=c["global_crops_size"], local_size=c["local_crops_size"], n_local_crops=c["local_crops_number"],
        batch_size=c["batch_size"],
        dino_head=sslstep.HeadSpec(c["head_n_prototypes"], c["head_hidden_dim"], c["head_bottleneck_dim"], c["head_nlayers"]),
        ibot_head=(sslstep.HeadSpec(c["ibot_head_n_prototypes"], c["head_hidden_dim"], c["head_bottleneck_dim"],
                                    c["head_nlayers"]) if c["ibot_separate_head"] else None),
        centering=c["centering"], teacher_temp=c["teacher_temp"], student_temp=c["student_temp"],
        center_momentum=c["center_momentum"], dino_weight=c["dino_loss_weight"], ibot_weight=c["ibot_loss_weight"],
        koleo_weight=c["koleo_loss_weight"], layerwise_decay=c["layerwise_decay"],
        patch_embed_lr_mult=c["patch_embed_lr_mult"], clip_grad=c["clip_grad"], beta1=c["adamw_beta1"],
        beta2=c["adamw_beta2"], teacher_momentum=c["momentum_teacher"], randomize=False)


def build(c, weights, model_name, seed):
    """SSLStep with the run's backbone (student = teacher = the weights) and freshly initialised
    heads (the teacher's a copy: prepare_for_distributed_training)."""
    torch.manual_seed(seed)  # DINOHead's trunc_normal_/kaiming draws
    model_cfg = TINY[model_name]
    step = sslstep.SSLStep(preset(c, model_cfg))
    sd = torch.load(weights, weights_only=True)
    for side in (step.student, step.teacher):
        bb = official_backbone(**model_cfg)
        bb.load_state_dict(sd, strict=True)
        side["backbone"] = bb
    for k in step.student.keys():
        step.teacher[k].load_state_dict(step.student[k].state_dict())
    for t in step.teacher.parameters():
        t.requires_grad = False
    step.student.train()
    step.teacher.eval()
    return step


def entropy_probe(step):
    """Records the DINO targets' mean row entropy (DinoKit's teacher_entropy) as they are made."""
    seen = {}
    for loss in (step.dino_loss,):
        for name in ("softmax_center_teacher", "sinkhorn_knopp_teacher"):
            orig = getattr(loss, name)

            def wrapped(*a, _orig=orig, **kw):
                out = _orig(*a, **kw)
                p = out.detach().double().clamp(min=0)
                seen["entropy"] = float(-(p * torch.log(p.clamp(min=1e-300))).sum(-1).mean())
                return out

            setattr(loss, name, wrapped)
    return seen


def images(folder):
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith((".png", ".jpg", ".jpeg")))
    return [Image.open(os.path.join(folder, n)).convert("RGB") for n in names]


def run(c, weights, data, model_name="tiny-plain", seed=0, threads=1, log=None):
    """Per-step dicts: the loss terms, teacher entropy and the schedules' values."""
    from dinov2.data import DataAugmentationDINO, MaskingGenerator, collate_data_and_cast

    torch.set_num_threads(threads)
    logging.getLogger("dinov2").setLevel(logging.WARNING)
    imgs = images(data)
    b = c["batch_size"]
    steps_per_epoch = len(imgs) // b  # DinoKit drops the last partial batch
    lr_s, wd_s, mom_s, tt_s, ll_s = official_schedules(c, steps_per_epoch)
    step = build(c, weights, model_name, seed)
    step.build_optimizer()
    probe = entropy_probe(step)
    aug = DataAugmentationDINO(tuple(c["global_crops_scale"]), tuple(c["local_crops_scale"]), c["local_crops_number"],
                               global_crops_size=c["global_crops_size"], local_crops_size=c["local_crops_size"])
    size, patch = c["global_crops_size"], sslstep.PATCH
    mask_gen = MaskingGenerator(input_size=(size // patch, size // patch),
                                max_num_patches=0.5 * size // patch * size // patch)
    collate = partial(collate_data_and_cast, mask_ratio_tuple=tuple(c["mask_ratio_min_max"]),
                      mask_probability=c["mask_sample_probability"], n_tokens=(size // patch) ** 2,
                      mask_generator=mask_gen, dtype=torch.float32)
    random.seed(seed)
    order_rng = np.random.default_rng(seed)
    rows = []
    for epoch in range(c["epochs"]):
        order = order_rng.permutation(len(imgs))
        for i in range(steps_per_epoch):
            it = epoch * steps_per_epoch + i
            batch = collate([(aug(imgs[j]), ()) for j in order[i * b:(i + 1) * b]])
            lr, wd, mom, tt, ll = (float(s[it]) for s in (lr_s, wd_s, mom_s, tt_s, ll_s))
            for g in step.optimizer.param_groups:  # train.py apply_optim_scheduler
                g["weight_decay"] = wd * g["wd_multiplier"]
                g["lr"] = (ll if g["is_last_layer"] else lr) * g["lr_multiplier"]
            step.optimizer.zero_grad(set_to_none=True)
            terms = step.forward_backward(batch, teacher_temp=tt)
            if step.p.clip_grad:
                step.clip_gradients()
            step.optimizer.step()
            step.update_teacher(mom)
            row = {k: float(v) for k, v in terms.items()}
            row.update(step=it, epoch=epoch, teacher_entropy=probe.get("entropy", float("nan")), lr=lr, wd=wd,
                       teacher_momentum=mom, teacher_temp=tt, last_layer_lr=ll)
            rows.append(row)
        if log:
            last = [r for r in rows if r["epoch"] == epoch]
            log(f"epoch {epoch + 1}: loss {np.mean([r['total'] for r in last]):.3f}, "
                f"teacher entropy {np.mean([r['teacher_entropy'] for r in last]):.3f}")
    return rows


def epoch_means(rows, key):
    by = {}
    for r in rows:
        by.setdefault(r["epoch"], []).append(r[key])
    return [float(np.mean(by[e])) for e in sorted(by)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True, help="a DinoKit run's resolved config.json")
    ap.add_argument("--weights", required=True, help="the hub .pth the run started from")
    ap.add_argument("--data", required=True, help="the run's image folder")
    ap.add_argument("--model", default="tiny-plain")
    ap.add_argument("--out", help="per-step JSONL")
    ap.add_argument("--compare", help="a DinoKit run folder: print epoch means side by side")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    c = json.load(open(args.config))
    t = time.time()
    rows = run(c, args.weights, args.data, args.model, args.seed, args.threads,
               log=lambda s: print(s, file=sys.stderr, flush=True))
    print(f"official run: {len(rows)} steps in {time.time() - t:.1f} s", file=sys.stderr)
    if args.out:
        with open(args.out, "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
    if args.compare:
        mine = [json.loads(line) for line in open(os.path.join(args.compare, "metrics.jsonl"))]
        cols = [epoch_means(mine, "total"), epoch_means(rows, "total"),
                epoch_means(mine, "teacher_entropy"), epoch_means(rows, "teacher_entropy")]
        print("epoch  loss dinokit  loss official  entropy dinokit  entropy official")
        for e in range(len(cols[0])):
            print(f"{e + 1:5d}  {cols[0][e]:12.3f}  {cols[1][e]:13.3f}  {cols[2][e]:15.3f}  {cols[3][e]:16.3f}")
        for key in ("lr", "wd", "teacher_momentum", "teacher_temp", "last_layer_lr"):
            d = max(abs(a[key] - b[key]) for a, b in zip(mine, rows))
            print(f"max |dinokit - official| {key}: {d:.3g}")


if __name__ == "__main__":
    main()
