"""Is a KD student more robust to INT8 than the plain student? (issue 36 item 4).

FP32 / INT8 PTQ / accuracy-controlled INT8 mAP of every run of a `benchmark kd` folder, paired by seed.

``python benchmarks/int8_robustness.py BENCH_FOLDER OUT_DIR [methods=none,builtin,crosskd] [max_drop=0.5]``

For each ``METHOD-sSEED`` run: its best.pt is exported to an FP32 OpenVINO IR at the run's size, then
``yolo_kd.tools.int8_control.quantize_controlled`` calibrates plain NNCF PTQ and the accuracy-controlled INT8 on the
run's train images and measures all of them on the val split with one validator at f32 inference precision (as
NNCF's control compares them; ``*_device`` columns at the CPU's default, bf16 on this AMX Xeon, as
``YOLO(ir).val()``). Rows go to ``OUT_DIR/int8.csv`` as they finish (a rerun
skips those present); the table (``OUT_DIR/table.md``) gives mean mAP per method and the INT8 drop paired by seed
against the first method, with 95 % t intervals.
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
import tempfile
from pathlib import Path

from yolo_kd.bench.stats import paired_ci

FIELDS = ("method", "seed", "fp32", "ptq", "int8ac", "fp32_device", "int8ac_device", "kept_float", "seconds")


def measure(run: Path, data: str, imgsz: int, max_drop: float, work: Path) -> dict:
    """One run's row: mAP50-95 points of its FP32 IR, plain PTQ and accuracy-controlled INT8."""
    import shutil

    from yolo_kd.tools.export import export
    from yolo_kd.tools.int8_control import quantize_controlled

    pt = work / f"{run.name}.pt"
    shutil.copy(run / "weights/best.pt", pt)
    ir = export(str(pt), format="openvino", imgsz=imgsz, data=data, val=False, e2e=False)["export"]
    c = quantize_controlled(ir, data, imgsz, max_drop)
    method, _, seed = run.name.rpartition("-s")
    keys = {
        "fp32": "fp32",
        "ptq": "ptq",
        "int8ac": "int8",
        "fp32_device": "fp32_device",
        "int8ac_device": "int8_device",
    }
    row = {"method": method, "seed": int(seed), **{k: round(100 * c[v], 3) for k, v in keys.items()}}
    return row | {"kept_float": len(c["kept_float"]), "seconds": round(c["seconds"], 1)}


def table(rows: list[dict], methods: list[str], header: str) -> str:
    """Mean mAP per method and INT8 drops paired by seed against ``methods[0]``."""
    by = {m: {r["seed"]: r for r in rows if r["method"] == m} for m in methods}
    ref = by[methods[0]]
    cols = ["method", "seeds", "FP32", "INT8 PTQ", "INT8 ctrl", "FP32 / ctrl at CPU default", "PTQ drop",
            "ctrl drop", f"PTQ drop - {methods[0]}'s [95 % CI]", "layers back to float"]  # fmt: skip
    out = [header, "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for m in methods:
        rs = list(by[m].values())
        if not rs:
            continue
        a = {k: statistics.fmean(float(r[k]) for r in rs) for k in FIELDS[2:7]}
        d = [(float(r["fp32"]) - float(r["ptq"])) - (float(ref[s]["fp32"]) - float(ref[s]["ptq"]))
             for s, r in by[m].items() if s in ref]  # fmt: skip
        mu, half = paired_ci(d) if d else (0.0, float("nan"))
        vs = "" if m == methods[0] else f"{mu:+.2f} [{mu - half:+.2f}, {mu + half:+.2f}]"
        kept = statistics.fmean(int(r["kept_float"]) for r in rs)
        cells = [m, len(rs), f"{a['fp32']:.2f}", f"{a['ptq']:.2f}", f"{a['int8ac']:.2f}",
                 f"{a['fp32_device']:.2f} / {a['int8ac_device']:.2f}", f"{a['fp32'] - a['ptq']:+.2f}",
                 f"{a['fp32'] - a['int8ac']:+.2f}", vs, f"{kept:.1f}"]  # fmt: skip
        out.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(out)


def main(folder: str, out_dir: str, *opts: str) -> None:
    """Measure every run of ``folder`` not yet in ``out_dir/int8.csv``, then write the table."""
    o = dict(a.split("=", 1) for a in opts)
    methods, max_drop = o.get("methods", "none,builtin,crosskd").split(","), float(o.get("max_drop", 0.5))
    cfg = json.loads((Path(folder) / "config.json").read_text())
    data, imgsz = cfg["data"], int(cfg["imgsz"])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "int8.csv"
    rows = list(csv.DictReader(path.open())) if path.exists() else []
    for r in rows:
        r["seed"] = int(r["seed"])
    done = {(r["method"], r["seed"]) for r in rows}
    runs = sorted(
        p for m in methods for p in (Path(folder) / "runs").glob(f"{m}-s*") if (p / "weights/best.pt").exists()
    )
    for run in runs:
        method, _, seed = run.name.rpartition("-s")
        if (method, int(seed)) in done:
            continue
        with tempfile.TemporaryDirectory(prefix="int8-robustness-") as work:  # exports stay out of the results
            rows.append(measure(run, data, imgsz, max_drop, Path(work)))
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, FIELDS)
            w.writeheader()
            w.writerows(rows)
        print(f"{run.name}: {rows[-1]}", flush=True)
    header = (f"INT8 robustness of `{folder}` (data {data}, imgsz {imgsz}): mAP50-95 points on the val split; "
              f"INT8 calibrated on the run's train images; accuracy control max_drop={max_drop}. "
              f"`python benchmarks/int8_robustness.py {folder} {out_dir} {' '.join(opts)}`")  # fmt: skip
    (out / "table.md").write_text(table(rows, methods, header) + "\n")
    print((out / "table.md").read_text())


if __name__ == "__main__":
    main(*sys.argv[1:])
