"""The statistics behind every published comparison (``yolo-kd benchmark diff|merge|pick``).

Paired differences by seed, gap shares, pooling, the tuning pick and merged tables.

A benchmark folder's ``runs.csv`` holds one row per (method, seed); two methods pair on the seeds both ran. A folder
may be given as ``FOLDER:SUFFIX``: its methods are then named ``METHOD@SUFFIX`` (a variant run with other ``kd=``
settings in its own folder on the same footing), so they pair with the plain ``METHOD`` of another folder.
"""

from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path
from typing import Any

from yolo_kd.errors import KDError


def paired_ci(diffs: list[float], level: float = 0.95) -> tuple[float, float]:
    """Mean of paired differences and the half-width of its Student-t interval (NaN below two pairs)."""
    if len(diffs) < 2:
        return statistics.fmean(diffs), math.nan
    from scipy.stats import t

    half = t.ppf(0.5 + level / 2, len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    return statistics.fmean(diffs), float(half)


def interval(diffs: list[float], level: float = 0.95) -> str:
    """``mean [low, high]`` of paired differences in points, the ``level`` t interval (``nan`` below two pairs)."""
    mean, half = paired_ci(diffs, level)
    return f"{mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}]"


def scores(folders: list[str] | str, metric: str = "mAP50-95") -> dict[str, dict[str, float]]:
    """``{method: {seed: points}}`` (metric x 100) from the runs.csv of each ``FOLDER[:SUFFIX]``.

    Spaces in a method name (older folders labelled variants ``crosskd auto``) read as ``@`` (``crosskd@auto``), so
    every run can be named in ``pairs=``, whose pairs are separated by spaces.
    """
    out: dict[str, dict[str, float]] = {}
    for spec in [folders] if isinstance(folders, str) else folders:
        folder, _, suffix = str(spec).partition(":")
        f = Path(folder) / "runs.csv"
        if not f.exists():
            raise KDError(f"{f} not found; pass benchmark folders that hold a runs.csv (a finished `benchmark kd`)")
        with open(f) as fh:
            for r in csv.DictReader(fh):
                method = "@".join(r["method"].split())
                name = f"{method}@{suffix}" if suffix else method
                if r["seed"] in out.setdefault(name, {}):
                    raise KDError(f"{name} seed {r['seed']} appears twice; give one of the folders a :SUFFIX")
                out[name][r["seed"]] = 100 * float(r[metric])
    return out


def paired(runs: dict[str, dict[str, float]], a: str, b: str, only: set[str] | None = None) -> list[tuple[str, float]]:
    """(seed, A - B) over the seeds both ran (``only`` those, when given), in seed order."""
    for m in (a, b):
        if m not in runs:
            raise KDError(f"method '{m}' is not in the folders (have: {', '.join(sorted(runs))})")
    seeds = sorted(set(runs[a]) & set(runs[b]) & (only or set(runs[a])), key=int)
    return [(s, runs[a][s] - runs[b][s]) for s in seeds]


def differences(runs: dict[str, dict[str, float]], spec: str, only: set[str] | None = None) -> list[float]:
    """The per-seed differences of ``A:B``, or of every pair of ``A:B,C:D`` pooled (one list, pair after pair)."""
    pairs = [p.split(":") for p in spec.split(",")]
    if any(len(p) != 2 for p in pairs):
        raise KDError(f"'{spec}': pool only A:B pairs (A:B,C:D)")
    d = [x for a, b in pairs for _, x in paired(runs, a, b, only)]
    if not d:
        raise KDError(f"'{spec}': no seed ran both methods")
    return d


def row(runs: dict[str, dict[str, float]], spec: str, level: float = 0.95, only: set[str] | None = None) -> str:
    """One markdown row for ``A:B``, ``A:LOW:HIGH`` or ``A:B,C:D``.

    ``A:B`` is a paired difference, ``A:LOW:HIGH`` the share of the gap LOW -> HIGH closed by A, ``A:B,C:D`` the
    per-seed differences of several pairs pooled into one mean and interval.
    """
    if "," in spec or spec.count(":") == 1:
        d = differences(runs, spec, only)
        ci = interval(d, level)
        if "," in spec:
            return f"| pooled {spec} ({len(d)} pairs) | {ci} | |"
        return f"| {spec.replace(':', ' - ')} | {ci} | {' / '.join(f'{x:+.2f}' for x in d)} |"
    names = spec.split(":")
    if len(names) != 3:
        raise KDError(f"'{spec}': give A:B, A:LOW:HIGH or A:B,C:D")
    a, low, high = names
    seeds = [s for s, _ in paired(runs, a, low, only) if s in runs.get(high, {})]
    share = [(runs[a][s] - runs[low][s]) / (runs[high][s] - runs[low][s]) for s in seeds]
    if not share:
        raise KDError(f"'{spec}': no seed ran all three methods")
    each = " / ".join(f"{100 * x:.0f} %" for x in share)
    return f"| gap {low} -> {high} closed by {a} | {100 * statistics.fmean(share):.0f} % | {each} |"


def diff(folders: list[str] | str, pairs: list[str] | str, level: float = 0.95, seeds: Any = None) -> str:
    """The markdown table of ``pairs`` (``A:B`` ...) over ``folders``; what ``benchmark diff`` prints."""
    level = float(level)
    if not 0 < level < 1:
        raise KDError(f"level={level}: give a confidence between 0 and 1, e.g. level=0.975")
    only = {str(s) for s in (seeds.split(",") if isinstance(seeds, str) else seeds)} if seeds is not None else None
    runs = scores(folders.split(",") if isinstance(folders, str) else folders)
    specs = pairs.split(" ") if isinstance(pairs, str) else pairs
    head = f"| paired difference (mAP50-95 points) | mean [{100 * level:g} % CI] | per seed |\n|---|---|---|"
    return "\n".join([head, *(row(runs, s, level, only) for s in specs if s)])


def pick(ref: str, variants: dict[str, str]) -> str | None:
    """The tuning rule: the variant with the best mean paired gain over ``ref``.

    Variants map a tag to ``FOLDER[:SUFFIX]/METHOD``, as ``ref`` is given; a variant without every reference seed is
    not ranked; the first listed wins ties.
    """

    def load(spec: str) -> dict[str, float]:
        folder, _, method = spec.rpartition("/")
        got = scores(folder)
        name = f"{method}@{folder.partition(':')[2]}" if ":" in folder else method
        return got.get(name, {})

    base, best, best_gain = load(ref), None, -math.inf
    for tag, spec in variants.items():
        runs = load(spec)
        if not base or set(base) - set(runs):
            continue
        gain = statistics.fmean(runs[s] - base[s] for s in base)
        if gain > best_gain:
            best, best_gain = tag, gain
    return best
