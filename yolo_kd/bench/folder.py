"""One benchmark folder, one set of settings: refuse runs that would pair under one name but were trained apart.

``check_folder`` compares what the user passed (data, teacher, schedule, ``kd=``, ``train=``, labels, footing);
``check_method_settings`` what the code decides for each method (its resolved defaults) against the folder's record.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from yolo_kd.errors import KDError


def _precision_apart(config: dict[str, Any]) -> dict[str, Any]:
    """The config with ``kd_teacher_precision`` moved out of ``kd`` into ``teacher_precision`` (compared on its own)."""
    kd = dict(config.get("kd") or {})
    return {**config, "kd": kd, "teacher_precision": kd.pop("kd_teacher_precision", config.get("teacher_precision"))}


def _flat(settings: dict[str, Any]) -> dict[str, Any]:
    """``{'args': {'crosskd': {'weight': 3}}, 'kd_decay': ..}`` -> ``{'crosskd_weight': 3, 'kd_decay': ..}``."""
    flat = {f"{m}_{p}": v for m, ps in settings.get("args", {}).items() for p, v in ps.items()}
    return flat | {k: v for k, v in settings.items() if k != "args"}


def check_method_settings(out: Path, old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """Refuse a method whose resolved settings differ from its earlier runs' here; return the merged record.

    ``check_folder`` compares what the user passed; this catches what the code decides (a default that changed
    between two calls), which would otherwise pair runs of two different methods under one name.
    """
    was = (old or {}).get("method_settings")
    if was is None:  # a new folder, or one made before settings were recorded: its earlier runs' are unknown (None)
        ran = {json.loads(f.read_text())["method"] for f in (out / "runs").glob("*/bench.json")} if old else set()
        was = dict.fromkeys(m for m in ran if m not in {"none", "ultralytics"})  # the peers have no settings
    unknown = sorted(m for m in new if m in was and was[m] is None)
    if unknown:
        print(f"benchmark: {out} holds {', '.join(unknown)} runs made before method settings were recorded; they are "
              "taken to match this code's")  # fmt: skip
    for m in sorted(set(was) & set(new) - set(unknown)):
        a, b = _flat(was[m]), _flat(new[m])
        diff = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
        if diff:
            then = ", ".join(f"{k}={a.get(k)}" for k in diff)
            now = ", ".join(f"{k}={b.get(k)}" for k in diff)
            raise KDError(
                f"{out} holds {m} runs trained with {then}; this code would train them with {now} (a default changed "
                "since): pass a new project= and rerun every method there, or use the code those runs were made with"
            )
    return {**was, **new} | dict.fromkeys(unknown)  # unknown stays unknown: never certified by a later call


def check_folder(out: Path, config: dict[str, Any]) -> None:
    """Refuse to mix runs made with different settings, or on another footing (``report.footing``), in one folder."""
    f = out / "config.json"
    keys = ("data", "teacher", "student", "epochs", "imgsz", "batch", "close_mosaic", "val", "kd", "labeled", "train")
    config = {"train": {}, **config}  # no train= given: the preset's settings alone
    footing, b, old = config.get("footing"), _precision_apart(config), None
    if f.exists():
        old = json.loads(f.read_text())
        old.setdefault("labeled", 1.0)  # folders made before labeled= existed hold every label
        old.setdefault("train", {})  # ... and before train= existed, the preset's settings alone
        old.setdefault("teacher_precision", "fp32")  # folders made before auto became the default: FP32 unless kd= said
        a = _precision_apart(old)
        diff = [k for k in (*keys, "teacher_precision") if a.get(k) != b.get(k)]
        if diff:
            was = a["teacher_precision"]
            also = f' (or kd="{{kd_teacher_precision: {was}}}")' if diff == ["teacher_precision"] else ""
            raise KDError(
                f"{out} holds runs made with different {', '.join(diff)} ({[a.get(k) for k in diff]} vs "
                f"{[b.get(k) for k in diff]}); pass a new project={also} or delete the folder"
            )
        was, now = old.get("footing") or {}, footing or {}  # folders made before footings were recorded: unknown
        moved = [f"{k} {was[k]} -> {now[k]}" for k in was if k in now and was[k] != now[k]]
        if moved:
            raise KDError(
                f"{out} holds runs made on another footing ({'; '.join(moved)}): seeds pair only on the same processor "
                "and library versions; pass a new project= (and rerun every method there)"
            )
        footing = was or footing
    settled = check_method_settings(out, old, config.get("method_settings") or {})
    out.mkdir(parents=True, exist_ok=True)
    methods = [*(old or {}).get("methods", []), *config["methods"]]  # every method the folder holds, in call order
    extra = {"methods": list(dict.fromkeys(methods)), "teacher_precision": b["teacher_precision"]}
    extra["method_settings"] = settled
    extra |= {"footing": footing} if footing else {}
    f.write_text(json.dumps({k: config.get(k) for k in keys} | extra, indent=2))
