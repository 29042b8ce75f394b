"""``yolo-kd train-teacher``: fine-tune the teacher the distillation needs (a plain Ultralytics train)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from yolo_kd.errors import KDError

DEFAULTS: dict[str, Any] = {"epochs": 100, "imgsz": 640, "patience": 30, "name": "teacher"}


def train_teacher(**kv: Any) -> Path:
    """Fine-tune ``model=`` (e.g. COCO-pretrained yolov8l.pt) on ``data=`` and return the teacher's best.pt.

    Any Ultralytics train argument overrides the defaults (epochs 100, imgsz 640, patience 30, name teacher).
    """
    import os

    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    from yolo_kd.paths import resolve_data, resolve_weights

    if "model" not in kv or "data" not in kv:
        raise KDError("train-teacher needs model=yolov8l.pt (or a .yaml) and data=D.yaml")
    model = resolve_weights(kv.pop("model"), "teacher model")
    data = resolve_data(kv.pop("data"))
    y = YOLO(model)
    y.train(data=data, **{**DEFAULTS, **kv})
    best = Path(y.trainer.best)
    print(f"\nteacher ready: {best}\nnext: yolo-kd train teacher={best} student=yolov8n.yaml data={data}")
    return best
