"""The picture of ``benchmark diff``: one row per paired comparison, its mean with the interval and every seed."""

from __future__ import annotations

from pathlib import Path

from yolo_kd.bench.stats import differences, paired_ci
from yolo_kd.errors import KDError


def forest(
    runs: dict[str, dict[str, float]], specs: list[str], path: Path, level: float = 0.95, title: str = ""
) -> Path:
    """Draw the ``A:B`` pairs of ``specs`` as a forest plot (mAP50-95 points) and save it to ``path``.

    Each row: the mean paired difference (dot), its ``level`` t interval (bar) and the per-seed differences (small
    marks), with zero marked: an interval clear of zero is a measured gain or loss, one across it is not. A pooled
    ``A:B,C:D`` row draws every pair's differences together.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = []
    for spec in specs:
        if "," not in spec and spec.count(":") != 1:
            continue  # gap shares stay in the table
        d = differences(runs, spec)
        name = spec.replace(":", " - ") if "," not in spec else f"pooled ({len(d)} pairs)"
        rows.append((name, d, *paired_ci(d, level)))
    if not rows:
        raise KDError("plot= draws A:B pairs (or pooled A:B,C:D); give at least one")
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(rows) + 1.4))
    for y, (_, d, mean, half) in enumerate(reversed(rows)):
        color = "tab:green" if mean - half > 0 else "tab:red" if mean + half < 0 else "tab:gray"
        if half == half:  # NaN below two seeds: no bar
            ax.plot([mean - half, mean + half], [y, y], color=color, lw=2)
        ax.plot(mean, y, "o", color=color)
        ax.plot(d, [y] * len(d), "|", color="black", ms=8, alpha=0.6)
        ax.text(mean, y + 0.22, f"{mean:+.2f}", ha="center", fontsize=8)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(len(rows)), [r[0] for r in reversed(rows)])
    ax.set_xlabel(f"paired difference, mAP50-95 points (mean, {100 * level:g} % t interval, | = one seed)")
    ax.set_title(title or "paired differences", fontsize=9, loc="left")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
