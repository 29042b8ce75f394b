"""One benchmark run in its own process: train a student with one method and seed, validate best.pt, save JSON.

Usage (called by ``yolo_kd.bench.kd``): ``python -m yolo_kd.bench.worker spec.json``. The spec holds ``method``,
``seed``, ``student``, ``teacher``, ``data``, ``project``, ``name`` and the shared Ultralytics ``train_args``.
Running each run in a fresh process keeps peak memory per run honest and one crash from ending the benchmark.
"""

from __future__ import annotations

import csv
import json
import os
import statistics
import sys
import time
from pathlib import Path


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB (Linux VmHWM, which unlike ru_maxrss is not inherited over exec)."""
    try:
        line = next(ln for ln in open("/proc/self/status") if ln.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class StepTimer:
    """Ultralytics callback pair that records the time between consecutive training batches within an epoch."""

    def __init__(self) -> None:
        """Start with no samples."""
        self.last: float | None = None
        self.steps: list[float] = []

    def epoch_start(self, trainer) -> None:
        """Reset at each epoch so data-loader start-up and validation are not counted as a step."""
        self.last = None

    def batch_end(self, trainer) -> None:
        """Record the interval since the previous batch of this epoch."""
        now = time.perf_counter()
        if self.last is not None:
            self.steps.append(now - self.last)
        self.last = now

    def median_ms(self) -> float:
        """Median step time in milliseconds (NaN when fewer than two batches ran)."""
        return statistics.median(self.steps) * 1e3 if self.steps else float("nan")


def validate(weights: str | Path, data: str, imgsz: int, batch: int, device, project: str | Path | None = None) -> dict:
    """Validate a checkpoint with stock Ultralytics: the task's own mAP50, mAP50-95 and per-class AP.

    The task's own: mask mAP for a seg model, pose mAP for a pose model, box mAP otherwise; ``box_mAP50-95`` always.
    """
    from ultralytics import YOLO

    from yolo_kd.tasks import BOX_METRIC, METRIC

    m = YOLO(str(weights))
    where = {"project": str(project), "name": "val", "exist_ok": True} if project else {}  # not ./runs/<task>/val*
    r = m.val(data=data, imgsz=imgsz, batch=batch, device=device, plots=False, verbose=False, workers=0, **where)
    names, main = r.names, getattr(r, METRIC.get(m.task, BOX_METRIC)[0])
    return {
        "task": m.task,
        "mAP50": float(main.map50),
        "mAP50-95": float(main.map),
        "box_mAP50-95": float(r.box.map),
        "per_class": {names[int(c)]: float(ap) for c, ap in zip(r.ap_class_index, main.maps[r.ap_class_index])},
        "params": sum(p.numel() for p in m.model.parameters()),
    }


def curve(results_csv: Path, task: str = "detect") -> list[dict]:
    """Per-epoch mAP50 / mAP50-95 of the task's metric from an Ultralytics results.csv (empty without validation)."""
    if not results_csv.exists():
        return []
    from yolo_kd.tasks import BOX_METRIC, METRIC

    k = METRIC.get(task, BOX_METRIC)[1]
    rows = []
    with open(results_csv) as f:
        for r in csv.DictReader(f):
            r = {k.strip(): v for k, v in r.items()}
            if f"metrics/mAP50-95({k})" in r:
                rows.append(
                    {
                        "epoch": int(float(r["epoch"])),
                        "mAP50": float(r[f"metrics/mAP50({k})"]),
                        "mAP50-95": float(r[f"metrics/mAP50-95({k})"]),
                    }
                )
    return rows


def named(method: str) -> dict[str, str]:
    """The method= a yolo-kd run is given: none for ``default`` (the trainer picks, as for a user who leaves it out)."""
    return {} if method == "default" else {"method": method}


def train(spec: dict, timer: StepTimer) -> Path:
    """Train one student as the spec says; return its run directory."""
    args = {**spec["train_args"], "data": spec["data"], "project": spec["project"], "name": spec["name"]}
    args["exist_ok"] = True
    args["seed"] = spec["seed"]
    method = spec.get("train_method", spec["method"])  # 'crosskd@u' trains crosskd (bench/labels.py)
    if method in {"none", "ultralytics"}:  # stock Ultralytics trainer: the peers users would otherwise run
        from ultralytics import YOLO

        model = YOLO(spec["student"])
        model.add_callback("on_train_epoch_start", timer.epoch_start)
        model.add_callback("on_train_batch_end", timer.batch_end)
        if method == "ultralytics":
            args["distill_model"] = spec["teacher"]
        model.train(**args)
        return Path(model.trainer.save_dir)
    from yolo_kd.tasks import trainer_for

    trainer = trainer_for(
        {**args, "student": spec["student"], "teacher": spec["teacher"], **named(method), **spec["kd"]}
    )
    trainer.add_callback("on_train_epoch_start", timer.epoch_start)
    trainer.add_callback("on_train_batch_end", timer.batch_end)
    trainer.train()
    return Path(trainer.save_dir)


def run(spec: dict) -> dict:
    """Train, validate best.pt, and return the run record (also written to ``<run dir>/bench.json``)."""
    import torch

    timer = StepTimer()
    t0 = time.time()
    save_dir = train(spec, timer)
    wall = time.time() - t0
    ta = spec["train_args"]
    best = save_dir / "weights" / "best.pt"
    scores = validate(best, spec["data"], ta["imgsz"], ta["batch"], ta.get("device"), project=save_dir)
    record = {
        "method": spec["method"],
        "seed": spec["seed"],
        "train_s": wall,
        "step_ms": timer.median_ms(),
        "steps": len(timer.steps),
        **scores,
        "curve": curve(save_dir / "results.csv", scores["task"]),
    }
    if torch.cuda.is_available() and torch.cuda.max_memory_allocated() > 0:
        record["peak_mem_mb"], record["peak_mem_kind"] = torch.cuda.max_memory_allocated() / 2**20, "CUDA allocated"
    else:
        record["peak_mem_mb"], record["peak_mem_kind"] = peak_rss_mb(), "RSS"
    (save_dir / "bench.json").write_text(json.dumps(record, indent=2))
    return record


if __name__ == "__main__":
    os.environ.setdefault("YOLO_OFFLINE", "1")
    run(json.loads(Path(sys.argv[1]).read_text()))
