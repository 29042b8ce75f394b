"""What a KD run shows besides Ultralytics' own plots: the distillation terms per epoch, and a quieter log."""

from __future__ import annotations

import csv
import logging
from pathlib import Path


class TeacherFreezeFilter(logging.Filter):
    """Fold Ultralytics' one "Freezing layer 'teacher_model....'" line per teacher tensor into a count."""

    def __init__(self) -> None:
        """Start counting at zero."""
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        """Drop (and count) the teacher's freezing lines; pass everything else."""
        if str(record.msg).startswith("Freezing layer 'teacher_model."):
            self.count += 1
            return False
        return True


FREEZE_FILTER = TeacherFreezeFilter()  # attached once to Ultralytics' logger by the first KDTrainer


def kd_columns(results_csv: Path, names: tuple[str, ...]) -> dict[str, list[float]]:
    """Per-epoch ``train/<name>`` values of the given KD terms (or columns named in full) from a results.csv."""
    cols: dict[str, list[float]] = {n: [] for n in names}
    with open(results_csv) as f:
        for row in csv.DictReader(f):
            row = {k.strip(): v for k, v in row.items()}
            for n in names:
                key = n if "/" in n else f"train/{n}"
                if key in row:
                    cols[n].append(float(row[key]))
    return {n: v for n, v in cols.items() if v}


def plot_kd_terms(results_csv: Path, names: tuple[str, ...], out: Path) -> Path | None:
    """``kd_terms.png``: each KD term (training mean per epoch) in its own panel; None when there is nothing."""
    cols = kd_columns(results_csv, names) if results_csv.exists() else {}
    if not cols:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(cols), figsize=(3.2 * len(cols), 3), squeeze=False)
    for ax, (n, v) in zip(axes[0], cols.items()):
        ax.plot(range(1, len(v) + 1), v, marker="o", ms=3)
        ax.set(title=n, xlabel="epoch")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
