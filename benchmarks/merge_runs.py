"""One table from several benchmark folders of one footing, written by the harness's own report (table, csv, plots).

``python benchmarks/merge_runs.py OUT SRC[:SUFFIX] [SRC[:SUFFIX] ...]``

Every run of each SRC folder (its runs.json) joins OUT's table; with ``:SUFFIX`` each of that folder's methods is
renamed ``METHOD@SUFFIX`` (a variant run with ``kd=`` settings), so the table's "vs plain" column pairs it with
METHOD. The first folder's teacher and settings head the table. A folder whose data or teacher differs from the
first one's, or a (method, seed) given twice, stops the merge: such runs do not pair (a rerun with exactly the same
mAP, a reproduction check, is kept once and named).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from yolo_kd.bench import report


def load(spec: str) -> tuple[dict, dict, list[dict]]:
    """(config, teacher record, runs) of ``SRC[:SUFFIX]``, methods renamed with the suffix."""
    folder, _, suffix = spec.partition(":")
    src = Path(folder)
    config = json.loads((src / "config.json").read_text())
    record = json.loads((src / "runs.json").read_text())
    runs = [{**r, "method": f"{r['method']}@{suffix}"} if suffix else r for r in record["runs"]]
    return config, record["teacher"], runs


def same_scores(a: dict, b: dict) -> bool:
    """Whether two runs of one (method, seed) gave exactly the same mAP50 and mAP50-95."""
    return a["mAP50"] == b["mAP50"] and a["mAP50-95"] == b["mAP50-95"]


def merge(out: Path, specs: list[str]) -> dict:
    """Write the merged table into ``out`` and return the harness's summary."""
    config, teacher, runs = load(specs[0])

    def key(r: dict) -> tuple:
        return r["method"], r["seed"]

    have = {key(r): r for r in runs}
    for spec in specs[1:]:
        c, _, more = load(spec)
        for k in ("data", "teacher", "imgsz", "epochs"):
            if c.get(k) != config.get(k):
                raise SystemExit(
                    f"{spec}: {k} {c.get(k)} differs from {specs[0]}'s {config.get(k)}; runs would not pair"
                )
        repro = [r for r in more if key(r) in have and same_scores(r, have[key(r)])]
        more = [r for r in more if r not in repro]  # a bit-identical rerun (a reproduction check) is kept once
        twice = set(have) & {key(r) for r in more}
        if twice:
            raise SystemExit(f"{spec}: {sorted(twice)} already come from another folder; give it a :SUFFIX")
        if repro:
            print(f"{spec}: {sorted(key(r) for r in repro)} reproduce the earlier runs bit for bit")
        have |= {key(r): r for r in more}
        runs += more
    out.mkdir(parents=True, exist_ok=True)
    config = {"preset": "merged", "device": "see Machine", **config}
    config["methods"] = sorted({r["method"] for r in runs})
    (out / "config.json").write_text(json.dumps({**config, "merged_from": specs}, indent=2))
    (out / "teacher.json").write_text(json.dumps(teacher, indent=2))
    return report.write(out, config, teacher, runs, [])


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    print(merge(Path(sys.argv[1]), sys.argv[2:])["table"])
