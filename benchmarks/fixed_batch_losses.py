"""Behaviour check for refactors (issue 14): KDModel's loss items on one fixed batch, to diff between two code trees.

PYTHONPATH=<old tree> python benchmarks/fixed_batch_losses.py > old.txt
PYTHONPATH=<new tree> python benchmarks/fixed_batch_losses.py > new.txt && diff old.txt new.txt
Every registered method without a task of its own (CASES first, with their options, then the rest at defaults).
Random yolov8s teacher / yolov8n student at imgsz 64 (seed 0); the teacher has other classes where the method allows
it (class mapping by name), the same classes where the method reads the head.
"""

from __future__ import annotations

import torch
from ultralytics.cfg import get_cfg
from ultralytics.nn.tasks import DetectionModel

from yolo_kd.bench.cost import batch_of
from yolo_kd.errors import KDError
from yolo_kd.model import KDModel

CASES = [
    ("crosskd", {}),
    ("bckd", {}),
    ("gkd", {"gkd": {"targets": "teacher", "gate": True}}),
    ("gkd+bmfi", {"bmfi": {"alpha": 1.5, "tau": 0.5}}),
    ("builtin+aid", {}),
    ("gkdpaper", {}),
]


def pair(teacher_nc: int) -> tuple[DetectionModel, DetectionModel]:
    """Seed-0 teacher and student; the teacher's names overlap the student's on two classes when it has four."""
    torch.manual_seed(0)
    t = DetectionModel("yolov8s.yaml", nc=teacher_nc, verbose=False)
    s = DetectionModel("yolov8n.yaml", nc=3, verbose=False)
    s.names = {0: "c", 1: "a", 2: "x"}
    t.names = {0: "a", 1: "b", 2: "c", 3: "d"} if teacher_nc == 4 else dict(s.names)
    s.args = t.args = get_cfg(overrides={"imgsz": 64})
    return t, s


def main() -> None:
    """Print one line per method: the loss vector and every loss item, 8 significant digits."""
    from yolo_kd.losses import LOSSES

    done = {m for m, _ in CASES}
    for method, args in CASES + [(k, {}) for k in sorted(LOSSES) if not LOSSES[k].task and k not in done]:
        try:
            m = KDModel(*pair(4), method=method, kd_args=args).train()
        except KDError:  # head methods need the same classes
            m = KDModel(*pair(3), method=method, kd_args=args).train()
        loss, items = m.loss(batch_of(2, 64, 3, "cpu"))
        print(method, [f"{v:.8e}" for v in loss.detach().flatten().tolist()],
              {k: f"{float(v):.8e}" for k, v in items.items()})  # fmt: skip


if __name__ == "__main__":
    main()
