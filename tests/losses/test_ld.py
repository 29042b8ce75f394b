"""ld: golden values on tiny hand-made tensors (see yolo_kd/losses/ld.py)."""

from __future__ import annotations

import math

import pytest
import torch

from tests.losses.inputs import S_CH, T_CH
from yolo_kd.losses import build_loss
from yolo_kd.losses.base import KDInputs


def test_ld_golden():
    """LD at one positive anchor, reg_max=2: T^2 * mean over sides of KL, weighted by student max score."""
    reg = 2
    s_box = torch.zeros(1, 4 * reg, 2)
    t_box = torch.zeros(1, 4 * reg, 2)
    t_box[0, 0, 0] = 4.0  # side 0 of anchor 0: teacher prefers bin 0
    fg = torch.tensor([[True, False]])
    x = KDInputs(
        s_feats=[],
        t_feats=[],
        s_head={"boxes": s_box, "scores": torch.zeros(1, 1, 2)},
        t_head={"boxes": t_box},
        batch={},
        assign=lambda side: (fg,),
    )
    loss = build_loss("ld", {"ld": {"weight": 1.0, "temperature": 2.0}}, S_CH, T_CH)
    p = torch.softmax(torch.tensor([2.0, 0.0]), 0)  # teacher side 0 at T=2
    kl0 = (p * (p.log() - math.log(0.5))).sum().item()
    assert loss(x)["ld"].item() == pytest.approx(4 * kl0 / 4, rel=1e-5)
