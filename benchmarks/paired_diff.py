"""Paired differences between two methods of one benchmark folder, and the share of a gap they close, per seed.

``python benchmarks/paired_diff.py FOLDER [level=0.975] [seeds=8,9,...] A:B [A:B ...] [A:LOW:HIGH ...] [A:B,C:D,...]``

``A:B`` prints the mean of A - B in mAP50-95 points over the seeds both ran, its 95 % t interval and the per-seed
differences; ``A:LOW:HIGH`` prints ``(A - LOW) / (HIGH - LOW)`` per seed and its mean (e.g. the share of the gap
from no KD to every label that ``crosskd@u`` closes: ``crosskd@u:none:none@all``). Markdown rows, for the tables in
docs/benchmarks.md. ``A:B,C:D`` pools the per-seed differences of several pairs into one mean and interval (e.g. one
setting against its plain runs over several methods: ``x@bf16:x,y@bf16:y``). ``level=`` sets the intervals'
confidence (default 0.95; e.g. 0.975 for a second look at one question, D4d); ``seeds=`` keeps only those seeds.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from pick_variant import scores  # the same runs.csv reader as the tuning rule (this folder is on sys.path)

from yolo_kd.bench.report import paired_ci


def points(folder: Path, spec: str, only: frozenset[str]) -> tuple[list[str], dict[str, dict], list]:
    """Names of ``A:B`` or ``A:LOW:HIGH``, their mAP50-95 points per seed (``only`` those, if any), the common seeds."""
    names = spec.split(":")
    runs = {n: {k: 100 * v for k, v in scores(folder, n).items() if not only or k in only} for n in names}
    missing = [n for n in names if not runs[n]]
    if missing or len(names) not in (2, 3):
        raise SystemExit(f"'{spec}': give A:B or A:LOW:HIGH with methods of runs.csv (missing: {missing})")
    return names, runs, sorted(set.intersection(*(set(runs[n]) for n in names)), key=int)


def diffs(folder: Path, spec: str, only: frozenset[str]) -> list[float]:
    """Per-seed differences A - B (points) of ``A:B`` over the seeds both ran."""
    names, runs, seeds = points(folder, spec, only)
    if len(names) != 2:
        raise SystemExit(f"'{spec}': only A:B pairs can be pooled")
    a, b = runs[names[0]], runs[names[1]]
    return [a[s] - b[s] for s in seeds]


def row(folder: Path, spec: str, level: float = 0.95, only: frozenset[str] = frozenset()) -> str:
    """One markdown row for ``A:B`` (paired difference), ``A:LOW:HIGH`` (share of a gap) or ``A:B,C:D`` (pooled)."""
    if "," in spec or spec.count(":") == 1:
        d = [x for pair in spec.split(",") for x in diffs(folder, pair, only)]
        mean, half = paired_ci(d, level)
        ci = f"{mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}]"
        if "," in spec:
            return f"| pooled {spec} ({len(d)} pairs) | {ci} | |"
        return f"| {spec.replace(':', ' - ')} | {ci} | {' / '.join(f'{x:+.2f}' for x in d)} |"
    names, runs, seeds = points(folder, spec, only)
    a, b, hi = (runs[n] for n in names)
    share = [(a[s] - b[s]) / (hi[s] - b[s]) for s in seeds]
    each = " / ".join(f"{100 * x:.0f} %" for x in share)
    return f"| gap {names[1]} -> {names[2]} closed by {names[0]} | {100 * statistics.fmean(share):.0f} % | {each} |"


if __name__ == "__main__":
    folder, *specs = sys.argv[1:]
    level, only = 0.95, set()
    while specs and specs[0].startswith(("level=", "seeds=")):
        key, _, value = specs.pop(0).partition("=")
        if key == "seeds":
            only.update(value.split(","))
        else:
            level = float(value)
    if not 0 < level < 1:
        raise SystemExit(f"level={level}: give a confidence between 0 and 1, e.g. level=0.975")
    print(f"| paired difference (mAP50-95 points) | mean [{100 * level:g} % CI] | per seed |\n|---|---|---|")
    print("\n".join(row(Path(folder), s, level, frozenset(only)) for s in specs))
