"""``yolo-kd benchmark kd``: every method trained with identical settings, validated by stock Ultralytics, tabled.

Each (method, seed) runs in its own process (``yolo_kd.bench.worker``) and leaves ``bench.json`` in its run folder;
a finished run is never rerun, so an interrupted benchmark continues where it stopped, and the table covers every
finished run in the folder (methods or seeds added by a later call join it; other settings, or a method whose
resolved hyper-parameters changed since, e.g. a code default, are refused). ``none`` and ``ultralytics`` (stock
``YOLO(student).train(distill_model=teacher)``) go through Ultralytics' own trainer.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from yolo_kd.bench.folder import check_folder
from yolo_kd.bench.presets import PRESETS
from yolo_kd.cfg import KD_DEFAULTS
from yolo_kd.errors import KDError

KEYS = ("data", "teacher", "project", "preset", "kd", "labeled", "train")


def settings(preset: str, kv: dict[str, Any]) -> dict[str, Any]:
    """Preset values overridden by the user's key=value arguments (lists may be given as 'a,b')."""
    if preset not in PRESETS:
        raise KDError(f"unknown benchmark preset '{preset}'; use one of {', '.join(PRESETS)}")
    s = {**PRESETS[preset], "data": None, "teacher": None, "kd": {}, "labeled": 1.0, "train": {}, **kv}
    unknown = set(s) - set(PRESETS[preset]) - set(KEYS)
    if unknown:
        raise KDError(f"unknown benchmark argument(s) {sorted(unknown)}; known: {sorted(set(s) - unknown)}")
    for k in ("methods", "seeds"):
        if isinstance(s[k], (str, int)):
            s[k] = [v for v in str(s[k]).split(",") if v]
    from yolo_kd.cfg import whole

    s["seeds"] = [whole(v, "seeds", "benchmark kd", low=0) for v in s["seeds"]]
    if not str(s["jobs"]).isdigit() or int(s["jobs"]) < 1:
        raise KDError(f"jobs={s['jobs']} is not a count; pass jobs=N (runs at once, 1 or more)")
    s["jobs"] = int(s["jobs"])
    s["train"] = student_train_args(s["train"])
    return s


def student_train_args(train: Any) -> dict[str, Any]:
    """``train=``: Ultralytics settings every student run of a folder gets on top of the preset's (e.g. mixup).

    Settings the harness owns (schedule, size, seed, data, output) have their own keys or are fixed for pairing.
    """
    from ultralytics.cfg import DEFAULT_CFG_DICT

    from yolo_kd.cfg import check_ultralytics

    if not isinstance(train, dict):
        raise KDError(f'train={train!r} is not a mapping; pass e.g. train="{{mixup: 0.5}}"')
    owned = {k for p in PRESETS.values() for k in train_args(p)}  # every preset's, so none can be overridden
    owned |= {"seed", "data", "project", "name", "model", "resume"}
    bad = sorted(k for k in train if k not in DEFAULT_CFG_DICT or k in owned)
    if bad:
        raise KDError(
            f"train= cannot set {bad}: give Ultralytics augmentation or optimizer settings (e.g. mixup, scale, lr0); "
            "the schedule, size and seed have their own keys or are fixed for pairing"
        )
    check_ultralytics(train)  # Ultralytics' own type and range checks, as for yolo-kd train (mixup=2: one line)
    return dict(train)


def student_task_by_name(student: str) -> str | None:
    """The task a student model config names (``yolov8n-seg.yaml``: segment), None for weights (read when trained)."""
    if not str(student).endswith((".yaml", ".yml")):
        return None
    from ultralytics.nn.tasks import guess_model_task

    return guess_model_task(str(student))


def train_args(s: dict[str, Any]) -> dict[str, Any]:
    """Ultralytics settings shared by every run (same schedule, augmentation and seed handling)."""
    # nbs=batch: one optimizer step per batch, so small presets are not left with a handful of accumulated steps
    return {
        "epochs": s["epochs"],
        "imgsz": s["imgsz"],
        "batch": s["batch"],
        "nbs": s["batch"],
        "workers": s["workers"],
        "device": s["device"],
        "deterministic": True,
        "plots": False,
        "close_mosaic": s["close_mosaic"],
        "val": s["val"],
        **({"warmup_epochs": s["warmup_epochs"]} if "warmup_epochs" in s else {}),
    }


def prepare(s: dict[str, Any], out: Path) -> tuple[str, str]:
    """Return (data yaml, teacher .pt): given ones, or synthetic KITTI and a teacher trained here (cached).

    With ``train_images`` (``preset=real``) the students' data is a fixed subset, the student weights are repaired
    (``footing.real_footing``) and ``s['student']`` is set to them; the teacher trains on the full train split.
    """
    from yolo_kd.paths import resolve_data, resolve_weights

    data = teacher_data = resolve_data(s["data"])
    teacher = resolve_weights(s["teacher"], "teacher")  # a missing file is one line before any data is made
    if "train_images" in s:
        from yolo_kd.bench.footing import real_footing

        full, sub, student, start = real_footing(s, out)
        data, teacher_data, s["student"], s["teacher_cfg"] = str(sub), str(full), str(student), str(start)
    elif data is None:
        if not s["images"]:
            raise KDError("this preset needs data=path/to/data.yaml (e.g. data=kitti.yaml after `yolo-kd convert`)")
        from yolo_kd.data.kitti import convert_kitti
        from yolo_kd.data.synthetic import make_synthetic_kitti
        from yolo_kd.data.synthetic_tasks import make_synthetic_task

        data = out / "data" / s.get("synthetic_task", "yolo") / "data.yaml"
        if not data.exists() and s.get("synthetic_task"):  # seg/pose/obb scenes, written as a YOLO dataset
            make_synthetic_task(data.parent, s["synthetic_task"], n=s["images"], val=s["val_images"], seed=0)
        elif not data.exists():
            frac = s["val_images"] / s["images"] if s["val_images"] else 0.2
            scenes = make_synthetic_kitti(out / "data" / "kitti", n=s["images"], seed=0)
            convert_kitti(scenes, data.parent, val_fraction=frac)
    if teacher is None:
        teacher = out / "runs" / "teacher" / "weights" / "best.pt"
        if not teacher.exists():
            from ultralytics import YOLO

            print(f"benchmark: training the teacher {s['teacher_cfg']} for {s['teacher_epochs']} epochs")
            args = {**train_args(s), "epochs": s["teacher_epochs"], "seed": 0, "exist_ok": True, "val": True}
            args["workers"] = s["workers"] * s["jobs"]  # it trains alone: every job's loaders
            tdata = str(teacher_data or data)
            YOLO(s["teacher_cfg"]).train(data=tdata, project=str(out / "runs"), name="teacher", **args)
    return str(data), str(teacher)


def method_settings(
    methods: list[str], student: str, kd: dict[str, Any], task: str = "detect", teacher_task: str | None = None
) -> dict[str, dict[str, Any]]:
    """What each yolo-kd method of a call trains with: every hyper-parameter and KD setting, defaults resolved.

    Code defaults (``method_params``), the pretrained-student defaults (``cfg.PRETRAINED_ARGS``) and ``kd=`` resolved
    as a training run would, as JSON values; ``none`` and ``ultralytics`` have none (their code is Ultralytics').
    ``default`` is a run with method= left out: its record names the method the code picked for this student and
    ``teacher_task`` (None: the student's task).
    """
    from yolo_kd.bench.labels import split_variant
    from yolo_kd.bench.worker import named
    from yolo_kd.cfg import split_overrides
    from yolo_kd.losses.registry import method_params

    out = {}
    for m in methods:
        base, variant = split_variant(m)
        if base in {"none", "ultralytics"}:
            continue
        pool = {"unlabeled": "pool"} if variant == "u" else {}  # that a pool is given can change the default's pick
        _, k = split_overrides({"student": student, **named(base), **kd, **pool}, task, teacher_task)
        args = {key: {**method_params(key), **given} for key, given in k["kd_args"].items()}
        skip = {"method", "kd_args", "teacher", "plugins", "unlabeled"}  # paths, not settings
        rest = {x: k[x] for x in sorted(KD_DEFAULTS) if x not in skip}
        picked = {"method": k["method"]} if base == "default" else {}
        out[m] = json.loads(json.dumps({"args": args, **picked, **rest}, default=str))
    return out


def run_one(spec: dict[str, Any]) -> dict[str, Any] | None:
    """Run one (method, seed) in a subprocess unless its bench.json exists; None when it failed."""
    run_dir = Path(spec["project"]) / spec["name"]
    done = run_dir / "bench.json"
    if done.exists():
        print(f"benchmark: {spec['name']} already done, skipped")
        return json.loads(done.read_text())
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "spec.json").write_text(json.dumps(spec, indent=2))
    print(f"benchmark: {spec['name']} (method {spec['method']}, seed {spec['seed']})", flush=True)
    cmd = [sys.executable, "-m", "yolo_kd.bench.worker", str(run_dir / "spec.json")]
    if spec.get("log_to_file"):  # several runs at once: keep their progress bars apart, one log per run
        with open(run_dir / "train.log", "w") as log:
            rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)
    else:
        rc = subprocess.call(cmd)
    if rc != 0 or not done.exists():
        print(f"benchmark: {spec['name']} FAILED (exit {rc}); it is reported as failed and rerun next time")
        return None
    return json.loads(done.read_text())


def run_kd_benchmark(preset: str = "cpu-small", **kv: Any) -> dict[str, Any]:
    """Run (or continue) the efficacy benchmark; write table.md, runs.csv, runs.json and plots into ``project``."""
    import os

    os.environ.setdefault("YOLO_OFFLINE", "1")
    from yolo_kd.bench import report
    from yolo_kd.bench.worker import validate

    s = settings(preset, kv)
    out = Path(s.get("project") or f"runs/bench/{preset}").resolve()
    from yolo_kd.bench.labels import labeled_split, split_variant, variant_spec
    from yolo_kd.losses import parse_method
    from yolo_kd.preflight import check_method_task

    task = student_task_by_name(s.get("student_cfg") or s["student"])
    for m in s["methods"]:
        base, variant = split_variant(m)
        if base not in {"none", "ultralytics", "default"}:  # unknown method, or one the task cannot take: one line
            spec = parse_method(base)
            if task:
                check_method_task(spec, task, task)
        if variant and float(s["labeled"]) >= 1:
            raise KDError(f"'{m}' needs labeled= below 1 (e.g. labeled=0.125): with every label there is no pool")
    data_all, teacher = prepare(s, out)
    data, pool = (data_all, None) if float(s["labeled"]) >= 1 else labeled_split(data_all, float(s["labeled"]))
    config = {**s, "data": data, "teacher": teacher, "preset": preset, "footing": report.footing()}
    config["teacher_precision"] = KD_DEFAULTS["kd_teacher_precision"]  # unless kd= names one
    from yolo_kd.teacher import student_task

    t_task = student_task(teacher) if "default" in s["methods"] else None  # a default may depend on the teacher
    config["method_settings"] = method_settings(s["methods"], s["student"], s["kd"], task or "detect", t_task)
    check_folder(out, config)
    tfile = out / "teacher.json"
    if not tfile.exists():
        tfile.write_text(
            json.dumps(validate(teacher, data, s["imgsz"], s["batch"], s["device"], project=out), indent=2)
        )
    base = {"student": s["student"], "teacher": teacher, "data": data, "project": str(out / "runs"), "kd": s["kd"]}
    specs = [
        {
            **base,
            "method": m,
            "seed": seed,
            "name": f"{m.replace('+', '-').replace('@', '_')}-s{seed}",
            "train_args": {**train_args(s), **s["train"]},  # train= reaches the students, not a teacher made here
            "log_to_file": s["jobs"] > 1,  # several runs at once: one log file each
        }
        for m in s["methods"]
        for seed in s["seeds"]
    ]
    specs = [variant_spec(sp, data_all, pool) for sp in specs]
    runs, failed = [], []
    with ThreadPoolExecutor(s["jobs"]) as pool:  # each run is its own process; threads only wait
        for spec, r in zip(specs, pool.map(run_one, specs)):
            runs.append(r) if r else failed.append(spec["name"])
    done = {(r["method"], r["seed"]) for r in runs}
    for f in sorted((out / "runs").glob("*/bench.json")):  # earlier invocations (same settings, see check_folder)
        r = json.loads(f.read_text())
        if (r["method"], r["seed"]) not in done:
            runs.append(r)
    result = report.write(out, config, json.loads(tfile.read_text()), runs, failed)
    print(f"\n{result['table']}\n\nSaved {out / 'table.md'}, runs.csv, runs.json and plots in {out}")
    return result
