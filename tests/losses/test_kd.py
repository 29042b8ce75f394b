"""kd: golden values on tiny hand-made tensors (see yolo_kd/losses/kd.py)."""

from __future__ import annotations

import math

import pytest
import torch

from tests.losses.inputs import S_CH, T_CH
from yolo_kd.losses import build_loss
from yolo_kd.losses.base import KDInputs
from yolo_kd.losses.functional import binary_kl


def test_kd_golden():
    """Binary KL with temperature and teacher-confidence weights, by hand for 2 anchors x 1 class."""
    assert binary_kl(torch.tensor(0.3), torch.tensor(0.3)).item() == pytest.approx(0.0, abs=1e-7)
    zs, zt = torch.tensor([[[0.0, 1.0]]]), torch.tensor([[[2.0, -1.0]]])  # (B=1, nc=1, A=2)
    loss = build_loss("kd", {"kd": {"weight": 1.0, "temperature": 2.0}}, S_CH, T_CH)
    x = KDInputs(s_feats=[], t_feats=[], s_head={"scores": zs}, t_head={"scores": zt}, batch={})

    def kl(ps, pt):
        return pt * math.log(pt / ps) + (1 - pt) * math.log((1 - pt) / (1 - ps))

    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    w = [sig(2.0), sig(-1.0)]
    kls = [kl(sig(0.0 / 2), sig(2.0 / 2)), kl(sig(1.0 / 2), sig(-1.0 / 2))]
    expected = 4 * (w[0] * kls[0] + w[1] * kls[1]) / (w[0] + w[1])
    assert loss(x)["kd"].item() == pytest.approx(expected, rel=1e-5)


def test_kd_documented_defaults():
    """Every documented default of kd is pinned: a drift would change the benchmarked configuration."""
    from yolo_kd.losses import method_params

    assert method_params("kd") == {"weight": 1.0, "temperature": 2.0}


def test_kd_weights_by_the_teachers_most_confident_class():
    """Two classes: each anchor's weight is the teacher's max class probability (not the min, not the mean)."""
    zs = torch.tensor([[[0.0, 1.0], [0.5, -0.5]]])  # (B=1, nc=2, A=2)
    zt = torch.tensor([[[2.0, -1.0], [-3.0, 1.5]]])
    x = KDInputs(s_feats=[], t_feats=[], s_head={"scores": zs}, t_head={"scores": zt}, batch={})

    def sig(v):
        return 1 / (1 + math.exp(-v))

    def kl(ps, pt):
        return pt * math.log(pt / ps) + (1 - pt) * math.log((1 - pt) / (1 - ps))

    w = [max(sig(2.0), sig(-3.0)), max(sig(-1.0), sig(1.5))]
    per = [sum(kl(sig(zs[0, c, a].item() / 2), sig(zt[0, c, a].item() / 2)) for c in (0, 1)) for a in (0, 1)]
    expected = 4 * (w[0] * per[0] + w[1] * per[1]) / (w[0] + w[1])
    assert build_loss("kd", {}, S_CH, T_CH)(x)["kd"].item() == pytest.approx(expected, rel=1e-5)
