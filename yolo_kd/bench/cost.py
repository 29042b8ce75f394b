"""``yolo-kd benchmark cost``: training step time and peak memory of each method vs. the student alone.

Lower bound = student step (forward + detection loss + backward + optimizer-free) + one teacher forward, so the
overhead a method adds above what any distillation must pay is visible. Every measurement runs in its own process
on the same fixed random batch (random-weight models), warm-up steps first, then the median of the timed steps;
peak memory is the process's CUDA peak allocation on a GPU, its peak RSS on a CPU. ``teacher_precision=`` runs the
frozen teacher as ``kd_teacher_precision`` does in training (parity-checked on the first step; the table says per
method whether the reduced precision was kept); the lower bound keeps the FP32 teacher forward, so a cheaper teacher
shows as a ratio below 1.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DEFAULTS = {
    "teacher": "yolov8s.yaml",
    "student": "yolov8n.yaml",
    "imgsz": 320,
    "batch": 8,
    "nc": 3,
    "steps": 10,
    "warmup": 2,
    "device": "cpu",
    "teacher_precision": "fp32",
    "methods": ["mimic", "builtin", "kd", "ld", "gkd", "bmfi", "gkd+bmfi"],
    "out": "",
    "data": "",  # seg/pose/obb students (a -seg/-pose/-obb cfg): its train images as the batch; default synthetic
}


def batch_of(bs: int, imgsz: int, nc: int, device) -> dict:
    """A fixed random batch with 4 boxes per image."""
    import torch

    g = torch.Generator().manual_seed(0)
    n = bs * 4
    xy = torch.rand(n, 2, generator=g) * 0.6 + 0.2
    wh = torch.rand(n, 2, generator=g) * 0.2 + 0.05
    b = {
        "img": torch.rand(bs, 3, imgsz, imgsz, generator=g),
        "batch_idx": torch.arange(bs).repeat_interleave(4).float(),
        "cls": torch.randint(0, nc, (n, 1), generator=g).float(),
        "bboxes": torch.cat([xy, wh], 1),
    }
    return {k: v.to(device) for k, v in b.items()}


def task_batch(task: str, data: str, bs: int, imgsz: int, device) -> tuple[dict, dict]:
    """(one batch of ``bs`` train images of ``data`` with the task's masks / keypoints / angles, the data dict).

    Without ``data``: synthetic scenes of the task (yolo_kd/data/synthetic_tasks.py) written to a temporary folder.
    """
    import tempfile

    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    from yolo_kd.data.synthetic_tasks import make_synthetic_task

    if not data:
        data = str(make_synthetic_task(Path(tempfile.mkdtemp()) / task, task, n=bs + 2, val=2))
    d = check_det_dataset(data)
    cfg = get_cfg(overrides={"task": task, "imgsz": imgsz, "mosaic": 0.0, "data": data})
    ds = build_yolo_dataset(cfg, d["train"], batch=bs, data=d, mode="val", stride=32)
    b = ds.collate_fn([ds[i % len(ds)] for i in range(bs)])
    b["img"] = b["img"].float() / 255
    return {k: v.to(device) if hasattr(v, "to") else v for k, v in b.items()}, d


def random_pair(teacher: str, student: str, nc: int, imgsz: int, data: dict | None = None) -> tuple[Any, Any]:
    """Random-weight (teacher, student) models of the student's task, seed 0 and the student built first."""
    import torch
    from ultralytics.cfg import get_cfg
    from ultralytics.nn import tasks as t

    task = t.guess_model_task(student)
    kind = {"detect": t.DetectionModel, "segment": t.SegmentationModel, "pose": t.PoseModel, "obb": t.OBBModel}[task]
    extra = {"data_kpt_shape": tuple(data["kpt_shape"])} if task == "pose" and data else {}
    nc = data["nc"] if data else nc
    torch.manual_seed(0)
    s, tm = (kind(cfg, nc=nc, verbose=False, **extra) for cfg in (student, teacher))
    s.args = tm.args = get_cfg(overrides={"imgsz": imgsz, "task": task})
    return tm, s


def measure(s: dict[str, Any], method: str | None) -> dict[str, float]:
    """Median step (ms) and peak memory (MB) of one method (None: the student alone, plus a teacher forward)."""
    import torch
    from ultralytics.nn.tasks import guess_model_task

    from yolo_kd.bench.worker import peak_rss_mb
    from yolo_kd.model import KDModel

    dev = torch.device("cuda:0" if str(s["device"]) not in {"cpu", ""} and torch.cuda.is_available() else "cpu")
    task = guess_model_task(s["student"])
    batch, data = (None, None) if task == "detect" else task_batch(task, s["data"], s["batch"], s["imgsz"], dev)
    teacher, student = random_pair(s["teacher"], s["student"], s["nc"], s["imgsz"], data)
    prec = s["teacher_precision"]
    model = student if method is None else KDModel(teacher, student, method=method, teacher_precision=prec)
    model = model.to(dev).train()
    batch = batch or batch_of(s["batch"], s["imgsz"], s["nc"], dev)  # detection: the fixed random batch as before

    def timed(fn) -> float:
        for _ in range(s["warmup"]):
            fn()
        ts = []
        for _ in range(s["steps"]):
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            fn()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            ts.append(time.perf_counter() - t)
        return statistics.median(ts) * 1e3

    def step() -> None:
        model.zero_grad(set_to_none=True)
        model.loss(batch)[0].sum().backward()

    out: dict[str, Any] = {"step_ms": timed(step)}
    if method is None:
        from yolo_kd.teacher_precision import channels_last, layout_applies, resolve

        teacher = teacher.to(dev).eval()
        out["teacher_fwd_ms"] = timed(lambda: torch.no_grad()(teacher)(batch["img"]))
        low = resolve(prec, dev)
        if low is not None:
            if layout_applies(dev.type, low):  # as training runs a kept bf16 teacher
                channels_last(teacher)
            with torch.autocast(dev.type, dtype=low):
                out["teacher_fwd_low_ms"] = timed(lambda: torch.no_grad()(teacher)(batch["img"]))
    else:
        out["teacher"] = str(model.teacher_dtype or "fp32").replace("torch.float16", "fp16").replace("torch.", "")
    if dev.type == "cuda":
        out["peak_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20
    else:
        out["peak_mem_mb"] = peak_rss_mb()
    return out


def run_cost_benchmark(**kv: Any) -> str:
    """Measure every method in its own process; print (and optionally save to ``out=``) a markdown table."""
    import os
    import platform

    from yolo_kd.bench.report import machine
    from yolo_kd.errors import KDError
    from yolo_kd.losses import parse_method

    unknown = set(kv) - set(DEFAULTS)
    if unknown:
        raise KDError(f"unknown cost-benchmark argument(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    s = {**DEFAULTS, **kv}
    from yolo_kd.cfg import whole

    for k in ("imgsz", "batch", "steps", "warmup"):
        if k in s:
            s[k] = whole(s[k], k, "benchmark cost", low=32 if k == "imgsz" else 0 if k == "warmup" else 1)
    if isinstance(s["methods"], str):
        s["methods"] = s["methods"].split(",")
    for m in s["methods"]:
        parse_method(m)
    from yolo_kd.teacher_precision import check

    check(s["teacher_precision"], "teacher_precision")
    os.environ.setdefault("YOLO_OFFLINE", "1")
    res: dict[str, dict] = {}
    for m in [None, *s["methods"]]:
        print(f"benchmark cost: {m or 'student alone'}", flush=True)
        cmd = [sys.executable, "-m", "yolo_kd.bench.cost", json.dumps({**s, "method": m})]
        res[m or "student"] = json.loads(subprocess.check_output(cmd, text=True).strip().splitlines()[-1])
    base = res["student"]["step_ms"]
    bound = base + res["student"]["teacher_fwd_ms"]
    ref = res["mimic"]["step_ms"] if "mimic" in res else None  # the x-mimic column only when mimic was timed

    low = s["teacher_precision"] != "fp32"

    def row(name: str, t: float, mem: str, teacher: str = "") -> str:
        cells = [name, f"{t:.0f}", f"{t / base:.2f}", f"{t / bound:.2f}", *([f"{t / ref:.2f}"] if ref else []), mem]
        return "| " + " | ".join(cells + ([teacher] if low else [])) + " |"

    head = ["run", "step (ms)", "x student", "x lower bound", *(["x mimic"] if ref else []), "peak mem (MB)"]
    head += ["teacher"] if low else []
    fwd = res["student"]
    note = ""
    if "teacher_fwd_low_ms" in fwd:
        note = (
            f"; teacher forward {fwd['teacher_fwd_ms']:.0f} ms in FP32, {fwd['teacher_fwd_low_ms']:.0f} ms at "
            f"teacher_precision={s['teacher_precision']} (the lower bound keeps FP32)"
        )
    from ultralytics.nn.tasks import guess_model_task

    task = guess_model_task(s["student"])
    batch_from = f"nc {s['nc']}" if task == "detect" else f"{task} batch from {s['data'] or 'synthetic scenes'}"
    lines = [
        f"Teacher {s['teacher']}, student {s['student']} (random weights), imgsz {s['imgsz']}, batch {s['batch']}, "
        f"{batch_from}, device {s['device']}; median of {s['steps']} steps after {s['warmup']} warm-up{note}; "
        f"{machine()} ({platform.machine()})",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        row("student alone", base, f"{fwd['peak_mem_mb']:.0f}"),
        row("lower bound (student + FP32 teacher fwd)", bound, "", "fp32"),
    ]
    lines += [row(m, res[m]["step_ms"], f"{res[m]['peak_mem_mb']:.0f}", res[m]["teacher"]) for m in s["methods"]]
    table = "\n".join(lines)
    print(table)
    if s["out"]:
        Path(s["out"]).parent.mkdir(parents=True, exist_ok=True)
        Path(s["out"]).write_text(table + "\n")
    return table


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    print(json.dumps(measure(spec, spec.pop("method"))))
