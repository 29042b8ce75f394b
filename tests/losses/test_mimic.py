"""mimic: golden values on tiny hand-made tensors (see yolo_kd/losses/mimic.py)."""

from __future__ import annotations

import pytest
import torch

from tests.losses.inputs import identity_adapters
from yolo_kd.losses import build_loss
from yolo_kd.losses.base import KDInputs


def test_mimic_golden():
    """Identity adapter: L = weight * sum_l mean((t - s_padded)^2)."""
    loss = build_loss("mimic", {"mimic": {"weight": 1.0}}, [1, 1, 1], [2, 1, 1])
    identity_adapters(loss)
    s = [torch.tensor([[[[1.0, 2.0]]]]), torch.tensor([[[[0.0]]]]), torch.tensor([[[[3.0]]]])]
    t = [torch.tensor([[[[2.0, 2.0]], [[1.0, -1.0]]]]), torch.tensor([[[[1.0]]]]), torch.tensor([[[[3.0]]]])]
    x = KDInputs(s_feats=s, t_feats=t, s_head={}, t_head={}, batch={})
    # level 0: diffs (1, 0 | 1, -1) -> mean 3/4; level 1: 1; level 2: 0
    assert loss(x)["mimic"].item() == pytest.approx(0.75 + 1.0)


def test_mimic_documented_defaults():
    """Every documented default of mimic is pinned: a drift would change the benchmarked configuration."""
    from yolo_kd.losses import method_params

    assert method_params("mimic") == {"weight": 2.0, "adapter": "conv"}
