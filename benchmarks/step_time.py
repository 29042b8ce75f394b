"""Training step time of each distillation method vs. the student alone and the lower bound.

Lower bound = student step (forward + detection loss + backward) + one teacher forward. Medians over timed steps
after warm-up, on the same random batch. Usage:

    python benchmarks/step_time.py --teacher yolov8s.yaml --student yolov8n.yaml --imgsz 320 --batch 8 \
        --methods mimic builtin gkd bmfi gkd+bmfi --steps 10 --out docs/step_time.md
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch


def build(teacher_cfg: str, student_cfg: str, imgsz: int, nc: int, method: str | None):
    """Random-weight teacher/student (nc classes) wrapped in a KDModel, or the bare student when method is None."""
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel

    from yolo_kd.model import KDModel

    torch.manual_seed(0)
    args = get_cfg(overrides={"imgsz": imgsz})
    student = DetectionModel(student_cfg, nc=nc, verbose=False)
    student.args = args
    if method is None:
        return student.train()
    teacher = DetectionModel(teacher_cfg, nc=nc, verbose=False)
    teacher.args = args
    return KDModel(teacher, student, method=method).train()


def batch_of(bs: int, imgsz: int, nc: int) -> dict:
    """A fixed random batch with 4 boxes per image."""
    g = torch.Generator().manual_seed(0)
    n = bs * 4
    xy = torch.rand(n, 2, generator=g) * 0.6 + 0.2
    wh = torch.rand(n, 2, generator=g) * 0.2 + 0.05
    return {
        "img": torch.rand(bs, 3, imgsz, imgsz, generator=g),
        "batch_idx": torch.arange(bs).repeat_interleave(4).float(),
        "cls": torch.randint(0, nc, (n, 1), generator=g).float(),
        "bboxes": torch.cat([xy, wh], 1),
    }


def time_steps(fn, steps: int, warmup: int = 2) -> float:
    """Median seconds of ``fn()`` over ``steps`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    """Measure and print (and optionally save) a markdown table."""
    p = argparse.ArgumentParser()
    p.add_argument("--teacher", default="yolov8s.yaml")
    p.add_argument("--student", default="yolov8n.yaml")
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--nc", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--methods", nargs="+", default=["mimic", "builtin", "kd", "ld", "gkd", "bmfi", "gkd+bmfi"])
    p.add_argument("--out", default="")
    a = p.parse_args()
    batch = batch_of(a.batch, a.imgsz, a.nc)

    student = build(a.teacher, a.student, a.imgsz, a.nc, None)

    def student_step():
        loss, _ = student.loss(batch)
        loss.sum().backward()

    base = time_steps(student_step, a.steps)
    kd_any = build(a.teacher, a.student, a.imgsz, a.nc, "mimic")
    teacher_fwd = time_steps(lambda: torch.no_grad()(kd_any.teacher_model)(batch["img"]), a.steps)
    bound = base + teacher_fwd
    rows = [("student alone", base), ("lower bound (student + teacher fwd)", bound)]
    for m in a.methods:
        model = build(a.teacher, a.student, a.imgsz, a.nc, m)

        def step(model=model):
            loss, _ = model.loss(batch)
            loss.sum().backward()

        rows.append((m, time_steps(step, a.steps)))
    dev = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    lines = [
        f"Teacher {a.teacher}, student {a.student}, imgsz {a.imgsz}, batch {a.batch}, nc {a.nc}, median of "
        f"{a.steps} steps after 2 warm-up, {dev}",
        "",
        "| run | step (ms) | x student | x lower bound | x mimic |",
        "|---|---|---|---|---|",
    ]
    mimic = dict(rows).get("mimic", float("nan"))
    for name, t in rows:
        lines.append(f"| {name} | {t * 1e3:.0f} | {t / base:.2f} | {t / bound:.2f} | {t / mimic:.2f} |")
    table = "\n".join(lines)
    print(table)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
