"""CWD: channel-wise knowledge distillation (Shu et al., ICCV 2021, arXiv 2011.13256)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from yolo_kd.losses.base import DistillLoss, KDInputs, adapters
from yolo_kd.losses.registry import register


def channel_kl(s: Tensor, t: Tensor, tau: float) -> Tensor:
    """``tau^2 / (N C) * sum_{n,c} KL(softmax_HW(t_nc / tau) || softmax_HW(s_nc / tau))`` for (N, C, H, W) maps."""
    n, c = s.shape[:2]
    log_s = F.log_softmax(s.reshape(n * c, -1) / tau, dim=1)
    log_t = F.log_softmax(t.reshape(n * c, -1) / tau, dim=1)
    return (log_t.exp() * (log_t - log_s)).sum() * tau**2 / (n * c)


@register("cwd")
class CWD(DistillLoss):
    """Channel-wise distillation (CWD, Shu et al., ICCV 2021, arXiv 2011.13256).

    Each channel of a level is turned into a spatial distribution by a softmax over H x W with temperature tau;
    ``L = weight * sum_l tau^2 / (N C) sum_{n,c} KL(p^T_nc || p^S_nc)``. Defaults tau = 1, weight = 10 as in
    MMRazor's CWD configs. The student map goes through a 1x1 conv when channel counts differ (the paper
    distils equal-width maps). ``norm=True`` applies a non-affine BatchNorm to both maps first (MMYOLO's RTMDet
    recipe). No re-scaling: the loss is already a per-image, per-channel mean.
    """

    names = ("cwd",)

    def __init__(
        self,
        s_channels: list[int],
        t_channels: list[int],
        *,
        weight: float = 10.0,
        tau: float = 1.0,
        norm: bool = False,
    ) -> None:
        """Build a 1x1 adapter per level where channels differ (identity otherwise)."""
        super().__init__(s_channels, t_channels)
        self.weight, self.tau = weight, tau
        self.adapt = adapters(s_channels, t_channels, "align")
        self.norm = norm

    def forward(self, x: KDInputs) -> dict[str, Tensor]:
        """Channel-wise KL summed over levels."""
        loss = 0.0
        for a, s, t in zip(self.adapt, x.s_feats, x.t_feats):
            s, t = a(s.float()), t.float()
            if self.norm:  # BatchNorm without affine parameters, batch statistics (training-time only loss)
                s, t = F.batch_norm(s, None, None, training=True), F.batch_norm(t, None, None, training=True)
            loss = loss + channel_kl(s, t, self.tau)
        return {"cwd": self.weight * loss}
