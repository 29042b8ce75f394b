"""builtin: golden values on tiny hand-made tensors (see yolo_kd/losses/builtin.py)."""

from __future__ import annotations

import pytest
import torch

from tests.losses.inputs import S_CH, T_CH, make_inputs
from yolo_kd.losses import build_loss
from yolo_kd.losses.builtin import Builtin


def test_builtin_matches_ultralytics_loss_sl2():
    """Our builtin equals Ultralytics' DistillationModel.loss_sl2 with the same projector and teacher scores."""
    from ultralytics.nn.distill_model import DistillationModel

    loss = build_loss("builtin", {}, S_CH, T_CH)
    x = make_inputs()
    ours = loss(x)["builtin"]
    scores = [
        p.sigmoid().max(dim=1, keepdim=True).values
        for p in torch.split(x.t_head["scores"], [f.shape[-2] * f.shape[-1] for f in x.t_feats], dim=-1)
    ]
    ref = sum(
        DistillationModel.loss_sl2(None, loss.projector[i](x.s_feats[i]), x.t_feats[i], i, tuple(scores)) * 6.0
        for i in range(3)
    )
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5)
    assert Builtin.score_weighted_l2(
        torch.ones(1, 1, 1, 2), torch.zeros(1, 1, 1, 2), torch.tensor([[[1.0, 3.0]]])
    ).item() == pytest.approx(1.0)


def test_builtin_documented_defaults():
    """Every documented default of builtin is pinned: a drift would change the benchmarked configuration."""
    from yolo_kd.losses import method_params

    assert method_params("builtin") == {"weight": 6.0}


def test_builtin_spatial_weights_are_the_teachers_max_class_probability():
    """The maps inspect draws: per cell, the largest sigmoid over classes, by hand for one 1x2 level and 2 classes."""
    import math

    from yolo_kd.losses.base import KDInputs

    t_scores = torch.tensor([[[0.0, 3.0], [2.0, -1.0]]])  # (B=1, nc=2, A=2)
    x = KDInputs(s_feats=[], t_feats=[torch.zeros(1, 4, 1, 2)], s_head={}, t_head={"scores": t_scores}, batch={})
    got = build_loss("builtin", {}, [4], [4]).spatial_weights(x)["builtin"][0]
    want = [1 / (1 + math.exp(-2.0)), 1 / (1 + math.exp(-3.0))]
    assert got.flatten().tolist() == pytest.approx(want, rel=1e-6)
