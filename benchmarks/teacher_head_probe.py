"""Time GKD's teacher-head forward + backward in FP32 and in bf16, and the gradient error bf16 brings (docs D4b).

``python benchmarks/teacher_head_probe.py [imgsz] [batch]`` (default 320, 8: the cost benchmark's setting): a
random-weight yolov8s teacher on ``benchmark cost``'s fixed batch; medians of 8 after 2 warm-up calls.
"""

from __future__ import annotations

import sys

import torch
from torch import Tensor
from ultralytics.cfg import get_cfg
from ultralytics.nn.tasks import DetectionModel

from yolo_kd.bench.cost import batch_of
from yolo_kd.bench.edge import median_ms
from yolo_kd.model import KDModel


def main(imgsz: int = 320, bs: int = 8) -> None:
    """Print the gradient's relative error per level and the two medians."""
    torch.manual_seed(0)
    t, s = DetectionModel("yolov8s.yaml", nc=3, verbose=False), DetectionModel("yolov8n.yaml", nc=3, verbose=False)
    s.args = t.args = get_cfg(overrides={"imgsz": imgsz})
    m = KDModel(t, s, method="gkd", teacher_precision="fp32").train()
    b = batch_of(bs, imgsz, 3, "cpu")
    with torch.no_grad():
        m.teacher_model(b["img"])
    feats = [m._teacher_feats[i].float() for i in range(len(m.feats_idx) - 1)]

    def grads(dtype: torch.dtype | None) -> tuple[Tensor, ...]:
        m.teacher_dtype = dtype
        f = [x.clone().requires_grad_(True) for x in feats]
        return torch.autograd.grad(m.teacher_task_loss(f, b), f)

    for i, (a, c) in enumerate(zip(grads(None), grads(torch.bfloat16))):
        print(f"level {i}: bf16 gradient relative error {float((a - c).norm() / a.norm()):.2e}")
    fp32, bf16 = (median_ms(lambda d=d: grads(d), 8, 2) for d in (None, torch.bfloat16))  # 2 warm-up calls
    print(f"head forward + backward: FP32 {fp32:.0f} ms, bf16 {bf16:.0f} ms")


if __name__ == "__main__":
    main(*(int(v) for v in sys.argv[1:3]))
