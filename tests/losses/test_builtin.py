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
