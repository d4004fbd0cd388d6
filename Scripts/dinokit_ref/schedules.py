"""The official training schedules: dinov2/train/train.py `build_schedulers`, run from the installed
source, for a DinoKit run config (the keys of the run's `config.json`). Shared by the schedule
fixtures (Scripts/fixtures/trainrun_schedules.py) and the reference run (ssl_run_ref.py)."""
import ast
import logging
import math
import os


class Cfg(dict):
    """The attribute access build_schedulers expects of an OmegaConf config."""
    __getattr__ = dict.__getitem__


def load_build_schedulers():
    """train.py's build_schedulers, compiled from the installed source (train.py imports fvcore at
    module level, which the venv lacks; the function itself needs only CosineScheduler)."""
    import dinov2
    from dinov2.utils.utils import CosineScheduler

    path = os.path.join(os.path.dirname(dinov2.__file__), "train", "train.py")
    tree = ast.parse(open(path).read(), path)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "build_schedulers")
    scope = {"CosineScheduler": CosineScheduler, "logger": logging.getLogger("dinov2")}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), path, "exec"), scope)
    return scope["build_schedulers"]


def scaled_lr(c):
    """DinoKit's `lr` override, else apply_scaling_rules_to_cfg's sqrt_wrt_1024 rule."""
    return c["lr"] if c.get("lr") is not None else c["base_lr"] * math.sqrt(c["batch_size"] / 1024.0)


def official_schedules(c, steps_per_epoch):
    """(lr, wd, momentum, teacher_temp, last_layer_lr) schedulers as build_schedulers makes them."""
    cfg = Cfg(
        train=Cfg(OFFICIAL_EPOCH_LENGTH=steps_per_epoch),
        optim=Cfg(lr=scaled_lr(c), min_lr=c["min_lr"], epochs=c["epochs"], warmup_epochs=c["warmup_epochs"],
                  weight_decay=c["weight_decay"], weight_decay_end=c["weight_decay_end"],
                  freeze_last_layer_epochs=c["freeze_last_layer_epochs"]),
        teacher=Cfg(momentum_teacher=c["momentum_teacher"], final_momentum_teacher=c["final_momentum_teacher"],
                    teacher_temp=c["teacher_temp"], warmup_teacher_temp=c["warmup_teacher_temp"],
                    warmup_teacher_temp_epochs=c["warmup_teacher_temp_epochs"]),
    )
    return load_build_schedulers()(cfg)
