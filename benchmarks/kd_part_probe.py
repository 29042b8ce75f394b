"""Time a method's distillation terms alone: forward + backward on one batch's inputs (docs/benchmarks.md D5).

``python benchmarks/kd_part_probe.py METHOD [METHOD ...]``: random-weight yolov8s -> yolov8n at 320, batch 8 (the
``benchmark cost`` batch) with a bf16 teacher; one training step captures the ``KDInputs`` the method receives, then the
method's terms run on them again and again with the student's maps detached (so the student's own backward is not
counted). Medians of 10 after 3 warm-up calls, with and without gradients.
"""

from __future__ import annotations

import dataclasses
import sys

import torch

from yolo_kd.bench.edge import median_ms


def detached(v):
    """``v`` with every tensor inside detached (a leaf requiring grad where it required grad)."""
    if isinstance(v, torch.Tensor):
        return v.detach().requires_grad_(v.requires_grad)
    if isinstance(v, tuple) and hasattr(v, "_fields"):
        return type(v)(*(detached(i) for i in v))
    if isinstance(v, (list, tuple)):
        return type(v)(detached(i) for i in v)
    return {k: detached(i) for k, i in v.items()} if isinstance(v, dict) else v


def probe(method: str) -> None:
    """Print the method's median time with and without gradients."""
    from yolo_kd.bench.cost import batch_of, random_pair
    from yolo_kd.model import KDModel

    teacher, student = random_pair("yolov8s.yaml", "yolov8n.yaml", 3, 320)
    model = KDModel(teacher, student, method=method, teacher_precision="bf16").train()
    seen: list = []
    hook = model.kd_loss.register_forward_pre_hook(lambda m, args: seen.append(args[0]))  # returns None: inputs kept
    model.loss(batch_of(8, 320, 3, "cpu"))[0].sum().backward()
    hook.remove()
    x = dataclasses.replace(
        seen[0], **{f.name: detached(getattr(seen[0], f.name)) for f in dataclasses.fields(seen[0])}
    )

    def step() -> None:
        model.kd_loss.zero_grad(set_to_none=True)
        sum(model.kd_loss(x).values()).backward()

    def forward() -> None:
        with torch.no_grad():
            model.kd_loss(x)

    both, fwd = median_ms(step, 10, 3), median_ms(forward, 10, 3)
    print(f"{method}: forward + backward {both:.1f} ms, forward alone {fwd:.1f} ms")


if __name__ == "__main__":
    for m in sys.argv[1:]:
        probe(m)
