"""The ``yolo-kd benchmark diff|merge|pick`` commands: keys checked, then the statistics of ``stats.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from yolo_kd.bench.stats import diff, pick, scores
from yolo_kd.errors import KDError, check_keys


def command(cmd: str, kv: dict[str, Any]) -> None:
    """``benchmark diff``, ``benchmark merge`` and ``benchmark pick``.

    ``diff folders=F[:SUFFIX],... pairs="A:B A:LOW:HIGH A:B,C:D" [level= seeds= plot=F.png title=]``;
    ``merge out=DIR folders=...``; ``pick ref=F/METHOD TAG=F/METHOD ...``.
    """
    if cmd == "diff":
        check_keys(kv, ("folders", "pairs", "level", "seeds", "plot", "title"), "benchmark diff")
        if "folders" not in kv or "pairs" not in kv:
            raise KDError('benchmark diff needs folders=F1[,F2:SUFFIX] and pairs="A:B [A:LOW:HIGH] [A:B,C:D]"')
        print(diff(str(kv["folders"]), str(kv["pairs"]), kv.get("level", 0.95), kv.get("seeds")))
        if "plot" in kv:
            from yolo_kd.bench.forest import forest

            runs = scores(str(kv["folders"]).split(","))
            out = forest(runs, str(kv["pairs"]).split(), Path(str(kv["plot"])), float(kv.get("level", 0.95)),
                         str(kv.get("title", "")))  # fmt: skip
            print(f"plot: {out}")
    elif cmd == "merge":
        check_keys(kv, ("out", "folders"), "benchmark merge")
        if "out" not in kv or "folders" not in kv:
            raise KDError("benchmark merge needs out=DIR and folders=F1[:SUFFIX],F2[:SUFFIX]")
        from yolo_kd.bench.report import merge

        print(merge(Path(str(kv["out"])), str(kv["folders"]).split(","))["table"])
    else:
        if "ref" not in kv or len(kv) < 2:
            raise KDError("benchmark pick needs ref=FOLDER/METHOD and TAG=FOLDER[:SUFFIX]/METHOD for each variant")
        ref = str(kv.pop("ref"))
        print(pick(ref, {k: str(v) for k, v in kv.items()}) or "default")
