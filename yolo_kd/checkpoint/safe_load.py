"""Safe loading of YOLO checkpoints from untrusted sources (``safe_load=True``).

Ultralytics ``.pt`` files are pickles: loading one can run any code its author put in it. ``safe_load`` reads them
with ``torch.load(weights_only=True)`` and an allowlist made only of network layer classes (``torch.nn``, and
``ultralytics.nn`` modules and models), so a checkpoint that references anything else - a function, ``os.system``,
an unknown class - is refused with its names listed instead of being executed.
"""

from __future__ import annotations

import inspect
import pickle
import re
from functools import cache
from pathlib import Path
from typing import Any

from yolo_kd.errors import KDError


@cache
def allowed_classes() -> tuple[type, ...]:
    """Every ``nn.Module`` class of ``torch.nn`` and of every module under ``ultralytics.nn``.

    Derived from the package itself, so blocks that ``ultralytics.nn.modules`` does not re-export (YOLO11's ``C3k``)
    and the YOLO26 / end-to-end heads are covered without a hand list.
    """
    import importlib
    import pkgutil

    import torch.nn as nn
    import ultralytics.nn as un

    spaces = [nn]
    for info in pkgutil.walk_packages(un.__path__, prefix="ultralytics.nn."):
        try:
            spaces.append(importlib.import_module(info.name))
        except Exception:  # an optional backend module that cannot import here defines no layer we load
            continue
    found = {obj for ns in spaces for obj in vars(ns).values() if inspect.isclass(obj)}
    layers = (c for c in found if issubclass(c, nn.Module) and c.__module__.startswith(("torch.nn", "ultralytics.nn")))
    return tuple(sorted(layers, key=lambda c: (c.__module__, c.__qualname__)))


def safe_load(path: str | Path) -> dict[str, Any]:
    """Load an Ultralytics checkpoint dict without running arbitrary pickled code.

    Raises:
        KDError: The file references globals outside the allowlist (they are named), or is not a checkpoint.
    """
    import torch

    try:
        with torch.serialization.safe_globals(list(allowed_classes())):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        names = list(dict.fromkeys(re.findall(r"GLOBAL ([\w.]+)", str(e))))  # e.g. posix.system
        what = ", ".join(names[:5]) if names else "objects"
        raise KDError(
            f"'{path}' refused by safe_load: it references {what}, which are not network layers; load it only if "
            "you trust its source (safe_load=False)"
        ) from None
    except Exception as e:
        raise KDError(f"'{path}' is not a readable checkpoint ({type(e).__name__}: {e}); pass a YOLO .pt") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("ema") or ckpt.get("model"), torch.nn.Module):
        raise KDError(f"'{path}' holds no model ('model' or 'ema' key); pass an Ultralytics checkpoint")
    return ckpt


def safe_model(path: str | Path, ckpt: dict[str, Any] | None = None) -> Any:
    """The FP32 eval-mode model of a :func:`safe_load` checkpoint, set up as Ultralytics' loader does.

    Pass ``ckpt`` when the file was already read with :func:`safe_load`, so it is not read twice.
    """
    import torch
    from ultralytics.nn.tasks import guess_model_task
    from ultralytics.utils import DEFAULT_CFG_DICT

    ckpt = safe_load(path) if ckpt is None else ckpt
    model = (ckpt.get("ema") or ckpt["model"]).float()
    model.args = {**DEFAULT_CFG_DICT, **(ckpt.get("train_args") or {})}
    model.pt_path = str(path)
    model.task = getattr(model, "task", guess_model_task(model))
    if not hasattr(model, "stride"):
        model.stride = torch.tensor([32.0])
    return model.eval()


def args_imgsz(train_args: dict | None) -> int | None:
    """The square size of a checkpoint's ``train_args`` (the larger side of a list; None when absent)."""
    imgsz = (train_args or {}).get("imgsz")
    return int(imgsz if isinstance(imgsz, int) else max(imgsz)) if imgsz else None


def train_imgsz(path: str | Path) -> int | None:
    """The ``imgsz`` a checkpoint was trained at (None for a yaml or a checkpoint without train args).

    What ``YOLO("best.pt").val()`` uses when no size is given; read with Ultralytics' own loader, as ``yolo export``.
    """
    if not str(path).endswith(".pt"):
        return None
    from ultralytics.nn.tasks import torch_safe_load

    return args_imgsz(torch_safe_load(str(path))[0].get("train_args"))
