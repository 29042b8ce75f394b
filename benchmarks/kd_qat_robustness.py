"""Does a KD student keep more of its accuracy through KD-aware QAT than the plain student? (issue 36 item 4).

``python benchmarks/kd_qat_robustness.py OUT_DIR FOLDER:METHOD[:LABEL] ... [epochs=2] [lr0=0.002] [kd=kd] [ptq=1]``

For each ``METHOD-sSEED`` run of each ``benchmark kd`` FOLDER: its best.pt is exported to an FP32 OpenVINO IR, then
fine-tuned with ``yolo-kd train quantize=8`` (ModelOpt fake-quantization of the student only, ranges calibrated on 8
batches) while the folder's teacher distils with method ``kd`` (logit KD: no adapters, so every student starts the
same way), section 4b's recipe: SGD at a constant ``lr0``, no warm-up, mosaic off, the run's seed, size, batch and
train images; the QAT checkpoint is exported by ``yolo-kd export format=openvino`` (its Q/DQ graph becomes an INT8 IR).
Both IRs are scored on the val split by one validator at f32 inference precision (as ``int8_robustness.py``).
Rows go to ``OUT_DIR/kdqat.csv`` as they finish (a rerun skips those present); ``OUT_DIR/table.md`` gives the mean
mAP per label and the KD-QAT drop paired by seed against the first label, with 95 % t intervals; with ``ptq=1`` each
row also gets plain NNCF PTQ of the same best.pt (``export int8=True``), added to rows measured before, and a second
table sets KD-QAT against it.
"""

from __future__ import annotations

import csv
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from yolo_kd.bench.stats import interval

FIELDS = ("label", "seed", "fp32", "kdqat", "seconds", "ptq")


def ir_score(ir: str, data: str, imgsz: int) -> float:
    """mAP50-95 points of an IR folder on the val split at f32 inference precision."""
    import openvino as ov

    from yolo_kd.edge.graph import read_metadata
    from yolo_kd.tools.int8_control import ir_map, val_batches

    names = {int(k): v for k, v in read_metadata(Path(ir))["names"].items()}
    validator, val = val_batches(data, imgsz, "val")
    core = ov.Core()
    compiled = core.compile_model(
        core.read_model(next(Path(ir).glob("*.xml"))), "CPU", {"INFERENCE_PRECISION_HINT": "f32"}
    )
    return 100 * ir_map(compiled, val, validator, names)


def student_copy(run: Path, work: Path) -> Path:
    """The run's best.pt copied into ``work`` (exports land beside it, out of the results), once per run."""
    pt = work / "student.pt"
    if not pt.exists():
        shutil.copy(run / "weights/best.pt", pt)
    return pt


def measure(run: Path, cfg: dict, seed: int, o: dict, work: Path) -> dict:
    """One run's row: FP32 IR and KD-QAT INT8 IR mAP50-95 points."""
    from yolo_kd.tasks import trainer_for
    from yolo_kd.tools.export import export

    t0, imgsz = time.time(), int(cfg["imgsz"])
    pt = student_copy(run, work)
    fp32 = ir_score(export(str(pt), format="openvino", imgsz=imgsz, val=False, e2e=False)["export"], cfg["data"], imgsz)
    args = {"student": str(pt), "teacher": cfg["teacher"], "data": cfg["data"], "method": o["kd"], "quantize": 8,
            "epochs": int(o["epochs"]), "imgsz": imgsz, "batch": int(cfg["batch"]), "nbs": int(cfg["batch"]),
            "optimizer": "SGD", "lr0": float(o["lr0"]), "lrf": 1.0, "warmup_epochs": 0, "mosaic": 0.0,
            "seed": seed, "deterministic": True, "workers": 2, "val": False, "plots": False,
            "project": str(work), "name": "qat", "exist_ok": True}  # fmt: skip
    trainer = trainer_for(args)
    trainer.train()
    qat = export(str(trainer.best), format="openvino", imgsz=imgsz, val=False, e2e=False)["export"]
    return {
        "fp32": round(fp32, 3),
        "kdqat": round(ir_score(qat, cfg["data"], imgsz), 3),
        "seconds": round(time.time() - t0),
    }


def ptq_score(run: Path, cfg: dict, work: Path) -> float:
    """mAP50-95 points of the run's plain NNCF PTQ IR (``export int8=True``, calibrated on its train images)."""
    from yolo_kd.tools.export import export

    pt = student_copy(run, work)
    imgsz = int(cfg["imgsz"])
    ir = export(str(pt), format="openvino", imgsz=imgsz, int8=True, data=cfg["data"], val=False, e2e=False)["export"]
    return round(ir_score(ir, cfg["data"], imgsz), 3)


def table(rows: list[dict], labels: list[str], header: str) -> str:
    """Mean mAP per label and the KD-QAT drop paired by seed against ``labels[0]``."""
    by = {lb: {int(r["seed"]): r for r in rows if r["label"] == lb} for lb in labels}
    ref = by[labels[0]]
    cols = ["student", "seeds", "FP32 IR", "INT8 KD-QAT IR", "drop", f"drop - {labels[0]}'s [95 % CI]",
            f"INT8 - {labels[0]}'s INT8 [95 % CI]", "per seed (drop difference)"]  # fmt: skip
    out = [header, "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for lb in labels:
        rs = by[lb]
        if not rs:
            continue
        f, q = (statistics.fmean(float(r[k]) for r in rs.values()) for k in ("fp32", "kdqat"))
        cells = [lb, len(rs), f"{f:.2f}", f"{q:.2f}", f"{f - q:+.2f}"]
        if lb == labels[0]:
            cells += ["", "", ""]
        else:
            seeds = sorted(s for s in rs if s in ref)
            drop = [(float(rs[s]["fp32"]) - float(rs[s]["kdqat"])) - (float(ref[s]["fp32"]) - float(ref[s]["kdqat"]))
                    for s in seeds]  # fmt: skip
            int8 = [float(rs[s]["kdqat"]) - float(ref[s]["kdqat"]) for s in seeds]
            cells += [interval(drop), interval(int8)]
            cells.append(" / ".join(f"{d:+.2f}" for d in drop))
        out.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(out)


def ptq_table(rows: list[dict], labels: list[str]) -> str:
    """Plain PTQ beside KD-QAT on the same students (rows with ptq), paired by seed.

    Mean mAP, the PTQ drop against ``labels[0]``'s and ``KD-QAT - PTQ``, each with its 95 % t interval.
    """
    cols = ["student", "seeds", "FP32 IR", "INT8 PTQ IR", "PTQ drop", f"PTQ drop - {labels[0]}'s [95 % CI]",
            "INT8 KD-QAT IR", "KD-QAT - PTQ [95 % CI]"]  # fmt: skip
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    has = [r for r in rows if r.get("ptq") not in (None, "")]
    drop = {(r["label"], int(r["seed"])): float(r["fp32"]) - float(r["ptq"]) for r in has}
    for lb in labels:
        rs = [r for r in has if r["label"] == lb]
        if not rs:
            continue
        f, p, q = (statistics.fmean(float(r[k]) for r in rs) for k in ("fp32", "ptq", "kdqat"))
        seeds = [int(r["seed"]) for r in rs if (labels[0], int(r["seed"])) in drop]
        vs = interval([drop[lb, s] - drop[labels[0], s] for s in seeds]) if lb != labels[0] and len(seeds) > 1 else ""
        qat = interval([float(r["kdqat"]) - float(r["ptq"]) for r in rs])
        cells = [lb, len(rs), f"{f:.2f}", f"{p:.2f}", f"{f - p:+.2f}", vs, f"{q:.2f}", qat]
        out.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(out) if len(out) > 2 else ""


def main(out_dir: str, *args: str) -> None:
    """Measure every run named by the FOLDER:METHOD[:LABEL] arguments not yet in ``out_dir/kdqat.csv``."""
    o = {"epochs": "2", "lr0": "0.002", "kd": "kd", "ptq": "0"} | dict(a.split("=", 1) for a in args if "=" in a)
    sources = [a.split(":") for a in args if "=" not in a]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "kdqat.csv"
    rows = list(csv.DictReader(path.open())) if path.exists() else []
    labels = []
    for folder, method, *label in sources:
        cfg = json.loads((Path(folder) / "config.json").read_text())
        lb = label[0] if label else method
        labels.append(lb)
        for run in sorted((Path(folder) / "runs").glob(f"{method.replace('+', '-')}-s*")):
            seed = int(run.name.rpartition("-s")[2])
            if not (run / "weights/best.pt").exists():
                continue
            row = next((r for r in rows if (r["label"], int(r["seed"])) == (lb, seed)), None)
            if row and (row.get("ptq") not in (None, "") or o["ptq"] != "1"):
                continue
            with tempfile.TemporaryDirectory(prefix="kdqat-") as work:  # QAT runs and IRs stay out of the results
                if row is None:
                    rows.append(row := {"label": lb, "seed": seed, **measure(run, cfg, seed, o, Path(work))})
                if o["ptq"] == "1":  # plain PTQ of the same best.pt, beside it
                    row["ptq"] = ptq_score(run, cfg, Path(work))
            with path.open("w", newline="") as f:
                w = csv.DictWriter(f, FIELDS)
                w.writeheader()
                w.writerows(rows)
            print(f"{lb} seed {seed}: {rows[-1]}", flush=True)
    header = (f"KD-aware QAT (method {o['kd']}, {o['epochs']} epochs, SGD lr0 {o['lr0']} constant, no warm-up, mosaic "
              f"off) of each run's best.pt: mAP50-95 points on the val split at f32 inference precision. "
              f"`python benchmarks/kd_qat_robustness.py {out_dir} {' '.join(args)}`")  # fmt: skip
    ptq = ptq_table(rows, labels)
    ptq = (
        f"\n\nPlain NNCF PTQ of the same best.pt (`export int8=True`, calibrated on the train images):\n\n{ptq}"
        if ptq
        else ""
    )
    (out / "table.md").write_text(table(rows, labels, header) + ptq + "\n")
    print((out / "table.md").read_text())


if __name__ == "__main__":
    main(*sys.argv[1:])
