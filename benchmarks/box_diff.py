"""Paired box mAP50-95 differences of seg / pose runs (runs.csv holds the task's own metric; bench.json holds both).

``python benchmarks/box_diff.py FOLDER[:SUFFIX] [FOLDER[:SUFFIX] ...] A:B [A:B ...]``: one row per pair, mean [95 % t
interval] and the per-seed differences, in points, read from each run's ``runs/*/bench.json`` (``box_mAP50-95``).
"""

import json
import sys
from pathlib import Path

from yolo_kd.bench.stats import row


def box_scores(specs: list[str]) -> dict[str, dict[str, float]]:
    """``{method[@suffix]: {seed: box mAP50-95 points}}`` over the folders' runs, as ``stats.scores`` reads runs.csv."""
    out: dict[str, dict[str, float]] = {}
    for spec in specs:
        folder, _, suffix = spec.partition(":")
        for f in sorted(Path(folder).glob("runs/*/bench.json")):
            d = json.loads(f.read_text())
            name = f"{d['method']}@{suffix}" if suffix else d["method"]
            out.setdefault(name, {})[str(d["seed"])] = 100 * float(d["box_mAP50-95"])
    return out


if __name__ == "__main__":
    args = sys.argv[1:]
    pairs = [a for a in args if a.count(":") == 1 and not Path(a.split(":")[0]).is_dir()]
    runs = box_scores([a for a in args if a not in pairs])
    print("| paired difference (box mAP50-95 points) | mean [95 % CI] | per seed |\n|---|---|---|")
    for p in pairs:
        print(row(runs, p))
