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


def test_ld_documented_defaults():
    """Every documented default of ld is pinned: a drift would change the benchmarked configuration."""
    from yolo_kd.losses import method_params

    assert method_params("ld") == {"weight": 1.0, "temperature": 10.0}


def test_ld_two_positives_weighted_by_the_detached_student_max_score():
    """Two positives, two classes: w_a = max_c sigma(z^S_ac), detached (no gradient reaches the scores); the sum of
    weighted KLs is divided by the sum of weights, by hand."""
    reg, tau = 2, 2.0
    s_box = torch.zeros(1, 4 * reg, 3, requires_grad=True)
    t_box = torch.zeros(1, 4 * reg, 3)
    t_box[0, 0, 0] = 4.0  # anchor 0, side 0: bin 0
    t_box[0, 3, 1] = 3.0  # anchor 1, side 1: bin 1
    scores = torch.tensor([[[0.0, 1.0, 5.0], [2.0, -1.0, 5.0]]], requires_grad=True)  # (B, nc=2, A=3); anchor 2 neg
    fg = torch.tensor([[True, True, False]])
    x = KDInputs(s_feats=[], t_feats=[], s_head={"boxes": s_box, "scores": scores}, t_head={"boxes": t_box},
                 batch={}, assign=lambda side: (fg,))  # fmt: skip

    def side_kl(logits):
        p = torch.softmax(torch.tensor(logits) / tau, 0)
        return (p * (p.log() - math.log(0.5))).sum().item()

    def sig(v):
        return 1 / (1 + math.exp(-v))

    kls = [tau**2 * side_kl([4.0, 0.0]) / 4, tau**2 * side_kl([0.0, 3.0]) / 4]
    w = [max(sig(0.0), sig(2.0)), max(sig(1.0), sig(-1.0))]
    out = build_loss("ld", {"ld": {"temperature": tau}}, S_CH, T_CH)(x)["ld"]
    assert out.item() == pytest.approx((w[0] * kls[0] + w[1] * kls[1]) / (w[0] + w[1]), rel=1e-5)
    out.backward()
    assert scores.grad is None and s_box.grad.abs().sum() > 0
