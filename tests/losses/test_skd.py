"""skd: golden values on tiny hand-made tensors (see yolo_kd/losses/skd.py)."""

from __future__ import annotations

import math

import pytest
import torch

from yolo_kd.losses import build_loss
from yolo_kd.losses.skd import NonLocal


def test_skd_golden_uniform_maps_and_identity_nonlocal():
    """Uniform maps -> masks 1: am = sqrt(C H W); zeroed attention adapters -> at = ||mean_hw T|| + ||mean_c T||."""
    t = torch.ones(1, 2, 2, 2)
    s = 2 * torch.ones(1, 2, 2, 2)
    loss = build_loss("skd", {}, [2], [2])
    torch.nn.init.zeros_(loss.adapt[0].bias)
    with torch.no_grad():
        loss.adapt[0].weight.copy_(torch.eye(2).view(2, 2, 1, 1))
        for p in [*loss.ch[0].parameters(), *loss.sp[0].parameters()]:
            p.zero_()
    terms = loss.level_terms(0, s, t)
    assert terms["am"].item() == pytest.approx(math.sqrt(8.0), rel=1e-5)
    assert terms["at"].item() == pytest.approx(math.sqrt(2) + math.sqrt(4), rel=1e-5)
    nl = NonLocal(4, 2)
    x = torch.randn(2, 4, 4, 4)
    assert torch.equal(nl(x), x)  # zero-initialised output projection: identity at start


def test_skd_documented_defaults():
    """Every documented default of skd is pinned: a drift would change the benchmarked configuration."""
    from yolo_kd.losses import method_params

    assert method_params("skd") == {"alpha": 0.0014, "gamma": 0.08, "beta": 0.0014, "tau": 0.1}
