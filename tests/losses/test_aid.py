"""aid: golden values on tiny hand-made tensors (see yolo_kd/losses/aid.py)."""

from __future__ import annotations

import math

import pytest
import torch

from tests.losses.inputs import seed_level, sig
from yolo_kd.losses import build_loss
from yolo_kd.losses.functional import binary_kl


def test_aid_weights_and_logit_term():
    """Teacher per-anchor loss (1 - IoU) + BCE(z, IoU), instance mean, normalised by the batch mean, exp(-alpha D)."""
    gts = [[0.0, 0.0, 8.0, 8.0], [8.0, 0.0, 24.0, 8.0]]
    x = seed_level([0.0, 0.0, 0.0], [1.0, -1.0, 0.5], [True, True, True], gt_idx=[0, 1, 1], gts=gts)
    aid = build_loss("aid", {}, [2], [2])
    fg, w_anchor, w_gt = aid.weights(x)
    bce = lambda z, y: -(y * math.log(sig(z)) + (1 - y) * math.log(1 - sig(z)))  # noqa: E731
    d0 = 0.0 + bce(1.0, 1.0)  # teacher box (0,0,8,8) == GT 0: IoU 1
    d1 = ((1 - 0.5) + bce(-1.0, 0.5) + (1 - 0.5) + bce(0.5, 0.5)) / 2  # boxes (8,0,16,8), (16,0,24,8) vs (8,0,24,8)
    m = (d0 + d1) / 2
    want = [math.exp(-0.1 * d0 / m), math.exp(-0.1 * d1 / m)]
    assert w_gt.tolist() == pytest.approx(want, rel=1e-5) and w_anchor[0].tolist() == pytest.approx(
        [want[0], want[1], want[1]], rel=1e-5
    )
    kl = binary_kl(torch.zeros(3) / 2, torch.tensor([1.0, -1.0, 0.5]) / 2) * 4
    logit = (kl * torch.tensor([want[0], want[1], want[1]])).sum() / 3
    assert aid(x)["aid_logit"].item() == pytest.approx(logit.item(), rel=1e-5)
    lvl = build_loss("aid", {"aid": {"mode": "level"}}, [2], [2]).weights(x)[2]
    assert lvl.tolist() == pytest.approx([math.exp(-0.1)], rel=1e-5)  # one level: its D normalises to 1


def test_aid_documented_defaults():
    """Every documented default of aid is pinned: a drift would change the benchmarked configuration."""
    from yolo_kd.losses import method_params

    assert method_params("aid") == {
        "alpha": 0.1,
        "mode": "instance",
        "feat_weight": 2.0,
        "logit_weight": 1.0,
        "temperature": 2.0,
        "adapter": "conv",
    }
