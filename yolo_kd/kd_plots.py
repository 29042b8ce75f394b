"""What a KD run shows besides Ultralytics' own: its result columns, the distillation terms per epoch, a quieter log."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from ultralytics.utils.torch_utils import unwrap_model


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


class ResultColumns:
    """A task trainer's result columns with KD: balancer multipliers in results.csv, short progress names, no val KD."""

    def save_metrics(self, metrics):
        """Ultralytics' results.csv row, plus ``kd_mult/<term>`` columns when ``kd_balance=auto``."""
        bal = getattr(unwrap_model(self.model), "balancer", None)
        extra = {f"kd_mult/{k}": v for k, v in bal.multipliers().items()} if bal is not None else {}
        super().save_metrics({**metrics, **extra})

    def progress_string(self) -> str:
        """Ultralytics' progress header; term names over 10 characters shortened (``crossk.cls``) to keep columns apart.

        results.csv keeps the full names.
        """
        names = [n if len(n) <= 10 else f"{n[:6]}.{n[-3:]}" for n in self.loss_names]
        return ("\n" + "%11s" * (4 + len(names))) % ("Epoch", "GPU_mem", *names, "Instances", "Size")

    def label_loss_items(self, loss_items=None, prefix="train"):
        """Ultralytics' labelled losses without ``val/<kd term>``: validation has no teacher, those were always 0."""
        out = super().label_loss_items(loss_items, prefix)
        if prefix != "val":
            return out
        kd = {f"val/{n}" for n in getattr(unwrap_model(self.model), "kd_names", ())}
        if isinstance(out, list):
            return [k for k in out if k not in kd]
        return {k: v for k, v in out.items() if k not in kd}
