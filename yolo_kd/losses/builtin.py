"""Ultralytics' own score-weighted L2 distillation, reproduced through the yolo_kd interface."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from yolo_kd.losses.base import DistillLoss, KDInputs
from yolo_kd.losses.functional import rank_share, split_levels
from yolo_kd.losses.layers import Conv1x1
from yolo_kd.losses.registry import register


@register("builtin")
class Builtin(DistillLoss):
    """Ultralytics ``distill_model=`` loss (ultralytics 8.4 ``nn/distill_model.py``, PR #24894), same formula.

    Per level: student maps go through a conv1x1-ReLU-conv1x1 projector to teacher channels; each location is
    weighted by the teacher's max class probability ``s``; ``L_l = sum(s * (P(F^S) - F^T)^2) / (sum(s) * C)``;
    ``L = dis * sum_l L_l`` with ``dis = 6.0`` (Ultralytics' default). Running it here puts the built-in on
    equal footing (same trainer, schedule and logging) with every other method. End-to-end heads: Ultralytics
    averages the one2many and one2one scores; here the one2many scores are used (what ``t_head`` carries). With
    method= left out, a detection student that starts from weights trains with this loss at ``weight=12``
    (``cfg.PRETRAINED_METHODS``, R14); named as ``method=builtin`` it keeps Ultralytics' 6.
    """

    names = ("builtin",)
    requires = frozenset({"scores"})

    def __init__(self, s_channels: list[int], t_channels: list[int], *, weight: float = 6.0) -> None:
        """Build Ultralytics' projector for each level."""
        super().__init__(s_channels, t_channels)
        self.weight = weight
        self.projector = nn.ModuleList(
            nn.Sequential(Conv1x1(s, t), nn.ReLU(inplace=True), Conv1x1(t, t)) for s, t in zip(s_channels, t_channels)
        )

    @staticmethod
    def score_weighted_l2(s: Tensor, t: Tensor, score: Tensor) -> Tensor:
        """``sum(score * (s - t)^2) / (sum(score) * C)`` for (B, C, H, W) maps and a (B, 1, H*W) score."""
        b, c = s.shape[:2]
        mse = (s.view(b, c, -1) - t.view(b, c, -1)) ** 2
        return (mse * score).sum() / (rank_share(score.sum()) * c + 1e-9)

    def spatial_weights(self, x: KDInputs) -> dict[str, list[Tensor]]:
        """The teacher's max class probability per cell."""
        scores = split_levels(x.t_head["scores"].float(), x.t_feats)
        return {"builtin": [sc.sigmoid().amax(1) for sc in scores]}

    def forward(self, x: KDInputs) -> dict[str, Tensor]:
        """Score-weighted L2 per level, summed and weighted."""
        scores = split_levels(x.t_head["scores"].float(), x.t_feats)
        loss = torch.zeros((), device=x.s_feats[0].device)
        for p, s, t, sc in zip(self.projector, x.s_feats, x.t_feats, scores):
            w = sc.sigmoid().amax(1).flatten(1).unsqueeze(1)  # (B, 1, HW)
            loss = loss + self.score_weighted_l2(p(s.float()), t.float(), w)
        return {"builtin": self.weight * loss}
