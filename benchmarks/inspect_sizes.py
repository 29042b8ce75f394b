"""Gradient share of each KD term against the detection loss at several image sizes (issue 38, item 3).

Usage: python benchmarks/inspect_sizes.py BENCH_FOLDER OUT.md [method ...]
BENCH_FOLDER is a `benchmark kd preset=real` folder (its repaired student, subset data and teacher are used: the one it
trained, else the `teacher=` file its config.json names).
Each method string may carry options after a colon, e.g. 'crosskd:align=1'. Shares are means over 6 batches of 8.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")


def main() -> None:
    """Inspect each method at 160, 320 and 640 px and write the share table."""
    from yolo_kd.tools.inspect import run_inspect

    bench, out = Path(sys.argv[1]), Path(sys.argv[2])
    methods = sys.argv[3:] or ["crosskd", "crosskd:align=1", "gkd+bmfi"]
    student, teacher = bench / "weights" / "yolov8n-bn.pt", bench / "runs" / "teacher" / "weights" / "best.pt"
    if not teacher.exists():  # a round that was given a committed teacher file
        teacher = Path(json.loads((bench / "config.json").read_text())["teacher"])
    data = next((bench / "data").glob("*/data-train*.yaml"))
    rows = []
    for spec in methods:
        method, _, opts = spec.partition(":")
        kw = {f"{method}_{k}": v for k, v in (o.split("=") for o in opts.split(",") if o)}
        kw = {k: (v == "1") if v in {"0", "1"} else v for k, v in kw.items()}
        for imgsz in (160, 320, 640):
            r = run_inspect(teacher=str(teacher), data=str(data), student=str(student), method=method, batches=6,
                            imgsz=imgsz, batch=8, out=str(out.parent / "inspect-png"), **kw)  # fmt: skip
            rows += [(spec, imgsz, k, v) for k, v in r["shares"].items()]
    terms = sorted({(s, k) for s, _, k, _ in rows}, key=lambda t: (methods.index(t[0]), t[1]))
    lines = [f"# Gradient share (x detection loss) by image size; {platform.processor() or platform.machine()}",
             "", f"`python benchmarks/inspect_sizes.py {bench} {out} {' '.join(methods)}`", "",
             "| method | term | 160 | 320 | 640 | max/min |", "|---|---|---|---|---|---|"]  # fmt: skip
    for spec, k in terms:
        v = {i: s for m, i, t, s in rows if m == spec and t == k}
        ratio = max(v.values()) / max(min(v.values()), 1e-12)
        lines.append(f"| {spec} | {k} | {v[160]:.3f} | {v[320]:.3f} | {v[640]:.3f} | {ratio:.2f} |")
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
