"""The real-data footing of ``yolo-kd benchmark kd preset=real``: real photos and the recipe users follow.

The student starts from COCO-pretrained nano weights, a teacher is fine-tuned once from a stronger nano checkpoint on
the full train split and reused by every run, and the students train on a fixed subset of that split (the same for
every method and seed). Defaults come from ``../shared/assets`` (``YOLO_KD_ASSETS`` names another copy): the helmet
photos, ``yolov8n.pt`` (student) and ``yolo11n.pt`` (teacher start). Those weights were rebuilt from INT8 exports
with identity BatchNorms, so both are repaired as ``yolo-kd fix-bn`` does (BatchNorm statistics re-estimated on 64
train images at the preset's size) before anything trains; weights with real BatchNorm statistics are used as given.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

from yolo_kd.errors import KDError


def assets_dir() -> Path | None:
    """The shared assets folder: ``YOLO_KD_ASSETS``, else ``shared/assets`` beside the checkout or the working dir."""
    env = os.environ.get("YOLO_KD_ASSETS")
    here = Path(__file__).resolve().parents[3] / "shared" / "assets"
    for p in ([Path(env)] if env else []) + [here, Path.cwd().parent / "shared" / "assets"]:
        if p.is_dir():
            return p
    return None


def asset(rel: str, what: str) -> Path:
    """A file or folder inside the shared assets, or one line naming what is missing and how to pass it instead."""
    root = assets_dir()
    if root is None or not (root / rel).exists():
        raise KDError(
            f"preset=real needs {what} ({rel}) from the shared assets, which were not found (set YOLO_KD_ASSETS=path "
            f"or pass it explicitly, e.g. data=D.yaml student=S.pt teacher=T.pt)"
        )
    return root / rel


def copy_dataset(src: Path, out: Path) -> Path:
    """Copy a YOLO dataset folder into ``out`` once (Ultralytics writes label caches beside the labels)."""
    dst = out / src.name
    if not (dst / "data.yaml").exists():
        tmp = out / f".{src.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src, tmp)
        tmp.rename(dst)
    return dst / "data.yaml"


def subset(data_yaml: Path, n: int, seed: int = 0) -> Path:
    """A data yaml whose train split is a fixed random ``n`` of the train images (links; val unchanged)."""
    import yaml

    from yolo_kd.bench.labels import link_subset
    from yolo_kd.data.check import split_images

    data_yaml = data_yaml.resolve()  # the subset yaml records absolute paths: a relative data= must not nest
    d = yaml.safe_load(data_yaml.read_text())
    root = Path(d.get("path") or data_yaml.parent)
    root = root if root.is_absolute() else data_yaml.parent / root
    train, val = (p if Path(p).is_absolute() else root / p for p in (d["train"], d["val"]))
    files = [str(p) for p in split_images(Path(train))]
    if n >= len(files):
        return data_yaml
    keep = sorted(random.Random(seed).sample(files, n))
    dest = data_yaml.parent / f"train-{n}" / "images"
    link_subset(keep, Path(train), dest)
    out = data_yaml.parent / f"data-train{n}.yaml"
    out.write_text(yaml.safe_dump({**d, "path": str(root), "train": str(dest), "val": str(val)}, sort_keys=False))
    return out


def repaired(weights: Path, data: Path, out: Path, imgsz: int) -> Path:
    """``weights`` with identity BatchNorms re-estimated on ``data`` (once, cached in ``out``); else ``weights``."""
    import torch

    from yolo_kd.batchnorm import identity_bn_warning
    from yolo_kd.tools.bn import fix_bn

    dst = out / f"{weights.stem}-bn.pt"
    if dst.exists():
        return dst
    ckpt = torch.load(weights, map_location="cpu", weights_only=False)
    model = ckpt.get("ema") or ckpt.get("model") if isinstance(ckpt, dict) else None
    if model is None or identity_bn_warning(model, str(weights), str(data)) is None:  # the trainer's own rule
        return weights
    out.mkdir(parents=True, exist_ok=True)
    return fix_bn(model=str(weights), data=str(data), out=str(dst), imgsz=imgsz)


def as_task(weights: Path, cfg: str, out: Path) -> Path:
    """A ``cfg`` model (e.g. ``yolov8n-seg.yaml``) holding the detection ``weights``' matching layers, saved once.

    Ultralytics' own transfer (``YOLO(cfg).load(weights)``): backbone, neck and box/class branches come from the
    detector; the mask prototypes and coefficients (or keypoint branch) start from scratch.
    """
    dst = out / f"{Path(cfg).stem}-from-{weights.stem}.pt"
    if not dst.exists():
        from ultralytics import YOLO

        out.mkdir(parents=True, exist_ok=True)
        YOLO(cfg).load(str(weights)).save(str(dst))
    return dst


def real_footing(s: dict[str, Any], out: Path) -> tuple[Path, Path, Path, Path]:
    """(full data yaml, student data yaml, student .pt, teacher start .pt) for ``preset=real``, made once in ``out``."""
    from yolo_kd.paths import resolve_data, resolve_weights

    if s["data"]:
        full = Path(resolve_data(s["data"]))
    else:
        rel = s.get("dataset", "datasets/helmet")
        full = copy_dataset(asset(rel, f"the {Path(rel).name} photos"), out / "data")
    wdir = out / "weights"

    def weights(name: str, kind: str) -> Path:
        p = Path(name)
        if not p.exists() and (a := assets_dir()) is not None and (a / "weights" / p.name).exists():
            p = a / "weights" / p.name
        return repaired(Path(resolve_weights(str(p), kind)), full, wdir, s["imgsz"]) if p.suffix == ".pt" else p

    student = weights(s["student"], "student")
    teacher_start = weights(s["teacher_cfg"], "teacher start") if s["teacher"] is None else Path(s["teacher_cfg"])
    if s.get("student_cfg"):  # a seg / pose student from the detection weights' matching layers
        student = as_task(student, s["student_cfg"], wdir)
    if s.get("teacher_task_cfg") and s["teacher"] is None:
        teacher_start = as_task(teacher_start, s["teacher_task_cfg"], wdir)
    n = int(s.get("train_images") or 0)
    return full, (subset(full, n) if n > 0 else full), student, teacher_start
