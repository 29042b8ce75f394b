"""Per-method mean of training-loss columns by epoch across a bench folder's runs (a markdown table per column).

Usage: python benchmarks/train_curves.py BENCH_FOLDER [COLUMN ...]
Reads the results.csv (Ultralytics' per-epoch log) of each finished run (its bench.json names the method; runs still
training are left out, as from the harness's tables); columns default to the three detection losses. R9/R10: does a
KD term keep the student from fitting the labels (higher train detection loss)?
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

DEFAULT_COLUMNS = ("train/box_loss", "train/cls_loss", "train/dfl_loss")


def curves(folder: Path, columns: tuple[str, ...]) -> dict[str, dict[str, dict[int, list[float]]]]:
    """Values of each results.csv column by method, then epoch, one per finished run (seed); each run read once."""
    out: dict[str, dict[str, dict[int, list[float]]]] = {c: defaultdict(lambda: defaultdict(list)) for c in columns}
    for done in sorted(folder.glob("runs/*/bench.json")):
        method = json.loads(done.read_text())["method"]
        for row in csv.DictReader((done.parent / "results.csv").open()):
            row = {k.strip(): v for k, v in row.items()}
            for c in columns:
                out[c][method][int(float(row["epoch"]))].append(float(row[c]))
    return out


def table(column: str, data: dict[str, dict[int, list[float]]]) -> str:
    """A markdown table: one row per method, one column per epoch, the mean over seeds (n seeds in the row)."""
    epochs = sorted({e for by_epoch in data.values() for e in by_epoch})
    lines = [f"| {column} | n | " + " | ".join(str(e) for e in epochs) + " |"]
    lines.append("|---|---|" + "---|" * len(epochs))
    for method, by_epoch in sorted(data.items()):
        means = [f"{statistics.mean(by_epoch[e]):.3f}" if by_epoch.get(e) else "" for e in epochs]
        lines.append(f"| {method} | {len(by_epoch[epochs[0]])} | " + " | ".join(means) + " |")
    return "\n".join(lines)


def main() -> None:
    """Print one table per requested column."""
    folder, columns = Path(sys.argv[1]), tuple(sys.argv[2:]) or DEFAULT_COLUMNS
    print("\n\n".join(table(c, data) for c, data in curves(folder, columns).items()))


if __name__ == "__main__":
    main()
