"""BatchNorm carried as identity-plus-bias (weights rebuilt from a fused or INT8 export): detect it, warn.

``yolo-kd fix-bn`` (tools/bn.py) repairs such weights; the trainer and the benchmark footing only need the check.
"""

from __future__ import annotations

from typing import Any


def is_identity_bn(bn: Any) -> bool:
    """True for a BatchNorm carried as identity-plus-bias (running mean 0, running variance ~1, weight 1)."""
    return bool(
        (bn.running_mean == 0).all() and ((bn.running_var + bn.eps - 1).abs() < 1e-3).all() and (bn.weight == 1).all()
    )


def identity_bn_warning(model: Any, weights: str, data: str) -> str | None:
    """A warning when most BatchNorm layers of a checkpoint are identity (rebuilt from a fused / INT8 export).

    Training-mode BatchNorm then normalises with batch statistics and the model collapses (a teacher went 0.136 ->
    0.015 mAP50-95). Only meaningful for ``.pt`` weights: a freshly built model starts with identity statistics too.
    """
    import torch.nn as nn

    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    n = sum(is_identity_bn(m) for m in bns)
    if not bns or n < 0.5 * len(bns):
        return None
    return (
        f"'{weights}': {n} of {len(bns)} BatchNorm layers are identity (weights rebuilt from a fused or INT8 "
        f"export?); fine-tuning will collapse them. Run first: yolo-kd fix-bn model={weights} data={data}"
    )
