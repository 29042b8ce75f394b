"""The tuning rule of the issue-15 rounds: the variant with the best mean paired gain over a reference method.

``python benchmarks/pick_variant.py ROOT REF_FOLDER REF_METHOD METHOD TAG=FOLDER[:NAME] [TAG=FOLDER[:NAME] ...]``

Each FOLDER under ROOT (or an absolute path) holds a benchmark's runs.csv; METHOD's mAP50-95 there (or NAME's: a
variant's row under another name, e.g. an earlier round's ``gkd+bmfi@gw12``) is paired by seed with REF_METHOD's in
REF_FOLDER. A variant without all of the reference's seeds is not ranked. Prints the per-variant gains to stderr and
the winning TAG to stdout (the first listed wins ties).
"""

from __future__ import annotations

import csv
import statistics
import sys
from pathlib import Path


def scores(folder: Path, method: str) -> dict[str, float]:
    """mAP50-95 per seed of one method in a benchmark folder (empty when it has no runs.csv)."""
    f = folder / "runs.csv"
    if not f.exists():
        return {}
    with open(f) as fh:
        return {r["seed"]: float(r["mAP50-95"]) for r in csv.DictReader(fh) if r["method"] == method}


def pick(root: Path, ref_folder: str, ref_method: str, method: str, variants: dict[str, str]) -> str | None:
    """The tag with the best mean paired gain over the reference (None when no variant has every seed)."""
    ref = scores(root / ref_folder, ref_method)
    best, best_gain = None, None
    for tag, spec in variants.items():
        folder, _, name = spec.partition(":")
        runs = scores(root / folder, name or method)
        if not ref or set(ref) - set(runs):
            print(f"{tag}: {len(set(runs) & set(ref))} of {len(ref)} seeds, not ranked", file=sys.stderr)
            continue
        gain = statistics.mean(runs[s] - ref[s] for s in ref) * 100
        print(f"{tag}: gain over {ref_method} {gain:+.2f} (seeds {','.join(sorted(ref))})", file=sys.stderr)
        if best_gain is None or gain > best_gain:
            best, best_gain = tag, gain
    return best


if __name__ == "__main__":
    root, ref_folder, ref_method, method, *pairs = sys.argv[1:]
    print(pick(Path(root), ref_folder, ref_method, method, dict(p.split("=", 1) for p in pairs)) or "default")
