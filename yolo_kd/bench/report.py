"""Aggregate benchmark runs: mean and spread over seeds, gain over ``none``, fraction of the teacher gap closed."""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import statistics
from datetime import date
from pathlib import Path
from typing import Any

from yolo_kd.bench.stats import paired_ci
from yolo_kd.errors import KDError


def mean_std(xs: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0


REFS = ("none", "builtin", "ultralytics")  # paired gains are reported against each of these that ran


def summarise(runs: list[dict], teacher: dict) -> list[dict[str, Any]]:
    """One row per method: metric means/spreads, paired per-seed gains (with 95 % t intervals), teacher gap closed.

    ``gain``/``gain_std``/``gain_ci`` pair each seed with ``none``'s same seed; ``vs_<ref>``/``vs_<ref>_ci`` do the
    same against the other references in ``REFS``, and ``vs_plain`` pairs a variant (``crosskd@u``) with its plain
    method (``crosskd``).
    """
    by: dict[str, list[dict]] = {}
    for r in runs:
        by.setdefault(r["method"], []).append(r)
    base = {r["seed"]: r for r in by.get("none", [])}
    rows = []
    for method, rs in by.items():
        row: dict[str, Any] = {"method": method, "seeds": len(rs)}
        for k in ("mAP50", "mAP50-95", "train_s", "step_ms", "peak_mem_mb"):
            row[k], row[k + "_std"] = mean_std([r[k] for r in rs])
        plain = method.partition("@")[0]  # 'crosskd@u' is also paired with 'crosskd' (column 'vs plain')
        for ref, key in [(r, r) for r in REFS[1:]] + ([(plain, "plain")] if plain != method else []):
            other = {r["seed"]: r["mAP50-95"] for r in by.get(ref, [])}
            diffs = [r["mAP50-95"] - other[r["seed"]] for r in rs if r["seed"] in other]
            if diffs and method != ref:
                row[f"vs_{key}"], row[f"vs_{key}_ci"] = paired_ci(diffs)
        gains = [r["mAP50-95"] - base[r["seed"]]["mAP50-95"] for r in rs if r["seed"] in base]
        if gains:
            row["gain"], row["gain_std"] = mean_std(gains)
            row["gain_ci"] = paired_ci(gains)[1]
            gap = teacher["mAP50-95"] - statistics.fmean(base[r["seed"]]["mAP50-95"] for r in rs if r["seed"] in base)
            row["gap_closed"] = row["gain"] / gap if gap > 0 else float("nan")
        rows.append(row)
    return rows


def footing() -> dict[str, str]:
    """What decides whether two runs of one seed compute the same thing: processor, GPU and kernel libraries.

    Float kernels differ between processors, and OpenCV's resize and warp differ bit-wise between releases (the same
    ``none`` seed moved 14.5 / 15.1 / 16.8 mAP50-95 under OpenCV 5.1 / 4.14 / 5.0), so runs pair by seed only on
    one footing.
    """
    import cv2
    import torch
    import ultralytics

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return {"cpu": cpu, "gpu": gpu, "torch": torch.__version__, "ultralytics": ultralytics.__version__,
            "opencv": cv2.__version__}  # fmt: skip


def machine() -> str:
    """CPU / GPU description and library versions for the report header."""
    f = footing()
    return (
        f"{f['cpu']}, {os.cpu_count()} cores, {f['gpu']}; torch {f['torch']}, ultralytics {f['ultralytics']}, "
        f"opencv {f['opencv']}, python {platform.python_version()}, {date.today().isoformat()}"
    )


def interval(mean: float, half: float) -> str:
    """``+1.2 [+0.3, +2.1]`` in points (``+1.2 [n<2]`` without an interval)."""
    if math.isnan(half):
        return f"{100 * mean:+.1f} [n<2]"
    return f"{100 * mean:+.1f} [{100 * (mean - half):+.1f}, {100 * (mean + half):+.1f}]"


def table(rows: list[dict], teacher: dict, failed: list[str]) -> str:
    """Markdown table of the summary rows (mAP x100 as points), teacher first; gains with 95 % intervals."""
    pts = lambda v, s: f"{100 * v:.1f} ± {100 * s:.1f}"  # noqa: E731
    refs = [ref for ref in (*REFS[1:], "plain") if any(f"vs_{ref}" in r for r in rows)]
    head = "".join(f" vs {ref} [95 % CI] |" for ref in refs)
    lines = [
        f"| run | seeds | mAP50 | mAP50-95 | gain vs none [95 % CI] |{head} gap closed | train (s) | step (ms) | "
        "peak mem (MB) |",
        "|---" * (9 + len(refs)) + "|",
        f"| teacher | - | {100 * teacher['mAP50']:.1f} | {100 * teacher['mAP50-95']:.1f} | |"
        + " |" * len(refs)
        + " | | | |",
    ]
    for r in rows:
        gain = interval(r["gain"], r["gain_ci"]) if "gain" in r else "n/a"
        vs = "".join(f" {interval(r[f'vs_{ref}'], r[f'vs_{ref}_ci']) if f'vs_{ref}' in r else ''} |" for ref in refs)
        gap = f"{100 * r['gap_closed']:.0f} %" if not math.isnan(r.get("gap_closed", math.nan)) else ""
        lines.append(
            f"| {r['method']} | {r['seeds']} | {pts(r['mAP50'], r['mAP50_std'])} | "
            f"{pts(r['mAP50-95'], r['mAP50-95_std'])} | {gain} |{vs} {gap} | {r['train_s']:.0f} | "
            f"{r['step_ms']:.0f} | {r['peak_mem_mb']:.0f} |"
        )
    lines += [f"| {name} | FAILED (see its run folder; rerun continues) |" + " |" * (7 + len(refs)) for name in failed]
    return "\n".join(lines)


def per_class_table(runs: list[dict]) -> str:
    """Markdown table of per-class mAP50-95 (x100, mean over seeds) for each method."""
    classes = sorted({c for r in runs for c in r["per_class"]})
    by: dict[str, list[dict]] = {}
    for r in runs:
        by.setdefault(r["method"], []).append(r)
    lines = ["| method | " + " | ".join(classes) + " |", "|---" * (len(classes) + 1) + "|"]
    for m, rs in by.items():
        vals = [statistics.fmean(r["per_class"].get(c, float("nan")) for r in rs) for c in classes]
        lines.append(f"| {m} | " + " | ".join(f"{100 * v:.1f}" for v in vals) + " |")
    return "\n".join(lines)


def write(out: Path, config: dict, teacher: dict, runs: list[dict], failed: list[str]) -> dict[str, Any]:
    """Write table.md, runs.csv, runs.json and the plots; return the summary."""
    from yolo_kd.bench import plots

    rows = summarise(runs, teacher)
    tab = table(rows, teacher, failed)
    keys = ("data", "teacher", "student", "epochs", "imgsz", "batch", "close_mosaic", "val", "device", "kd")
    keys += ("teacher_precision",) if "teacher_precision" in config else ()  # folders before D4 did not record it
    keys += ("train",) if config.get("train") else ()  # Ultralytics settings given on top of the preset's
    header = [
        f"Benchmark preset `{config['preset']}`: "
        + ", ".join(f"{k}={config[k]}" for k in keys)
        + (
            f", labeled={config['labeled']} (@u: + the other train images unlabeled; @all: every label)"
            if float(config.get("labeled", 1.0)) < 1
            else ""
        ),  # fmt: skip
        f"Machine: {machine()}",
        "mAP in points (x100) from stock Ultralytics val of each run's best.pt; mean ± sample std over the seeds "
        "counted in the 'seeds' column (seed i of every method shares data order and student init); "
        "gains paired by seed, mean [95 % t interval over seeds]: an interval that contains 0 is noise; "
        "gap closed = gain / (teacher - none).",
    ]
    md = "\n\n".join([*header, tab, "Per-class mAP50-95 (mean over seeds):", per_class_table(runs)]) if runs else tab
    (out / "table.md").write_text(md + "\n")
    (out / "runs.json").write_text(json.dumps({"teacher": teacher, "runs": runs, "failed": failed}, indent=2))
    cols = ["method", "seed", "mAP50", "mAP50-95", "train_s", "step_ms", "steps", "peak_mem_mb", "params"]
    with open(out / "runs.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        w.writerows([[r[c] for c in cols] for r in runs])
    if runs:
        plots.plot_all(out, rows, runs)
    return {"rows": rows, "table": tab, "markdown": md}


def merge(out: Path, specs: list[str]) -> dict[str, Any]:
    """One table from several folders of one footing (``FOLDER[:SUFFIX]``), written by the harness's own report.

    Folders whose data, teacher, size or epochs differ from the first one's are refused (their runs do not pair); a
    bit-identical rerun of a (method, seed) is kept once.
    """

    def load(spec: str) -> tuple[dict, dict, list[dict]]:
        folder, _, suffix = spec.partition(":")
        config = json.loads((Path(folder) / "config.json").read_text())
        record = json.loads((Path(folder) / "runs.json").read_text())
        runs = [{**r, "method": f"{r['method']}@{suffix}"} if suffix else r for r in record["runs"]]
        return config, record["teacher"], runs

    config, teacher, runs = load(specs[0])
    have = {(r["method"], r["seed"]): r for r in runs}
    for spec in specs[1:]:
        c, _, more = load(spec)
        for k in ("data", "teacher", "imgsz", "epochs"):
            if c.get(k) != config.get(k):
                raise KDError(f"{spec}: {k} {c.get(k)} differs from {specs[0]}'s {config.get(k)}; runs would not pair")
        same = [r for r in more if (k := (r["method"], r["seed"])) in have and r["mAP50-95"] == have[k]["mAP50-95"]]
        more = [r for r in more if r not in same]
        twice = set(have) & {(r["method"], r["seed"]) for r in more}
        if twice:
            raise KDError(f"{spec}: {sorted(twice)} already come from another folder; give it a :SUFFIX")
        have |= {(r["method"], r["seed"]): r for r in more}
        runs += more
    out.mkdir(parents=True, exist_ok=True)
    config = {"preset": "merged", "device": "see Machine", **config, "methods": sorted({r["method"] for r in runs})}
    (out / "config.json").write_text(json.dumps({**config, "merged_from": specs}, indent=2))
    (out / "teacher.json").write_text(json.dumps(teacher, indent=2))
    return write(out, config, teacher, runs, [])
