"""Non-finite distillation terms: zeroed for the batch and reported with the level and side they came from."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from yolo_kd.losses.base import KDInputs
from yolo_kd.losses.functional import split_levels


def nonfinite_source(x: KDInputs | None, strides: list[float]) -> str:
    """Which inputs of the KD terms hold NaN/Inf, by level (``teacher P4 map``), or the method's own arithmetic."""
    if x is None:
        return "an unknown level"
    level = lambda i: f"P{int(math.log2(strides[i]))}"  # noqa: E731
    split = lambda t: split_levels(t.float(), x.t_feats)  # noqa: E731
    found = [f"teacher {level(i)} map" for i, f in enumerate(x.t_feats) if not torch.isfinite(f).all()]
    found += [f"student {level(i)} map" for i, f in enumerate(x.s_feats) if not torch.isfinite(f).all()]
    for side, head in (("teacher", x.t_head), ("student", x.s_head)):
        for key in ("scores", "boxes"):
            maps = split(head[key])
            found += [f"{side} {level(i)} {key}" for i, v in enumerate(maps) if not torch.isfinite(v).all()]
    return ", ".join(found) if found else "finite inputs on every level (the method's own arithmetic)"


def zero_nonfinite(
    terms: dict[str, Tensor], x: KDInputs | None, strides: list[float], method: str, count: int
) -> tuple[dict[str, Tensor], int]:
    """Terms with non-finite ones replaced by 0, and 1 if any was (0 otherwise); warns naming term and level.

    Ultralytics' own NaN recovery then only ever sees a finite KD contribution; a term that keeps failing is reported
    on every batch (``count`` = the batch number among failing ones), never silently folded in.
    """
    bad = [k for k, v in terms.items() if not torch.isfinite(v).all()]
    if not bad:
        return terms, 0
    from ultralytics.utils import LOGGER

    LOGGER.warning(
        f"yolo-kd: non-finite distillation term(s) {', '.join(bad)} (method {method}) at "
        f"{nonfinite_source(x, strides)}; skipped for this batch ({count} batch(es) so far). "
        "Check the teacher and the method's weights/temperature."
    )
    return {k: (torch.zeros_like(v) if k in bad else v) for k, v in terms.items()}, 1
