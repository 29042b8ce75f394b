"""Benchmark figures: mAP50-95 per epoch, paired gains with 95 % intervals, and step time per method."""

from __future__ import annotations

import math
import statistics
from pathlib import Path


def _pyplot():
    """Matplotlib with a file-only backend (Ultralytics already depends on matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(out: Path, runs: list[dict]) -> Path | None:
    """mAP50-95 vs epoch, mean over seeds, one line per method; None when no run validated per epoch."""
    by: dict[str, dict[int, list[float]]] = {}
    for r in runs:
        for c in r.get("curve", []):
            by.setdefault(r["method"], {}).setdefault(c["epoch"], []).append(c["mAP50-95"])
    if not by:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (m, ep) in enumerate(by.items()):  # tab20 + 3 line styles: distinct for up to 20 methods
        xs = sorted(ep)
        style = {"color": plt.cm.tab20(i % 20), "linestyle": ("-", "--", ":")[i % 3], "marker": "o", "ms": 3}
        ax.plot(xs, [100 * statistics.fmean(ep[x]) for x in xs], label=m, **style)
    ax.set(xlabel="epoch", ylabel="val mAP50-95 (x100)", title="Student mAP50-95 per epoch (mean over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "map_per_epoch.png", dpi=120)
    plt.close(fig)
    return out / "map_per_epoch.png"


def plot_bars(out: Path, rows: list[dict], key: str, err: str, ylabel: str, title: str, fname: str) -> Path | None:
    """Bar chart of ``key`` per method with ``err`` error bars (rows lacking ``key`` are left out)."""
    rows = [r for r in rows if key in r]
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    scale = 100 if key == "gain" else 1
    ax.bar(
        [r["method"] for r in rows],
        [scale * r[key] for r in rows],
        yerr=[scale * r[err] for r in rows],
        capsize=4,
        color=["tab:green" if scale * r[key] >= 0 else "tab:red" for r in rows] if key == "gain" else "tab:blue",
    )
    ax.axhline(0, color="k", lw=0.8)
    ax.set(ylabel=ylabel, title=title)
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(out / fname, dpi=120)
    plt.close(fig)
    return out / fname


def plot_gains(out: Path, rows: list[dict]) -> Path | None:
    """Paired mAP50-95 gain with its 95 % interval, one panel per reference (none, builtin, ultralytics)."""
    panels = [(k, ref) for k, ref in (("gain", "none"), ("vs_builtin", "builtin"), ("vs_ultralytics", "ultralytics"))
              if any(k in r for r in rows)]  # fmt: skip
    if not panels:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 0.35 * len(rows) + 1.6), squeeze=False)
    for ax, (k, ref) in zip(axes[0], panels):
        rs = [r for r in rows if k in r]
        ci = [0.0 if math.isnan(r[f"{k}_ci"]) else 100 * r[f"{k}_ci"] for r in rs]
        lo = [100 * r[k] - c for r, c in zip(rs, ci)]
        colors = ["tab:green" if v > 0 else "tab:red" if v + 2 * c < 0 else "tab:gray" for v, c in zip(lo, ci)]
        for i, (r, c, col) in enumerate(zip(rs, ci, colors)):
            ax.errorbar(100 * r[k], i, xerr=c, fmt="o", color=col, capsize=3)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(range(len(rs)), [r["method"] for r in rs], fontsize=8)
        ax.set(xlabel=f"mAP50-95 gain vs {ref} (points)", title=f"vs {ref}: mean, 95 % interval")
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "gain.png", dpi=120)
    plt.close(fig)
    return out / "gain.png"


def plot_all(out: Path, rows: list[dict], runs: list[dict]) -> list[Path]:
    """Write every figure into ``out`` and return their paths."""
    figs = [
        plot_curves(out, runs),
        plot_gains(out, rows),
        plot_bars(out, rows, "step_ms", "step_ms_std", "median step (ms)", "Training step time", "step_time.png"),
    ]
    return [f for f in figs if f]
