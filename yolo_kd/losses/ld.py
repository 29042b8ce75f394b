"""Localization distillation on YOLO's DFL box distributions."""

from __future__ import annotations

from torch import Tensor

from yolo_kd.losses.base import DistillLoss, KDInputs
from yolo_kd.losses.functional import rank_share, side_kl
from yolo_kd.losses.registry import register


@register("ld")
class LocalizationKD(DistillLoss):
    """Localization distillation (Zheng et al., CVPR 2022, arXiv 2102.12252) on the DFL bins of v8/v11 heads.

    Each box side is a distribution over ``reg_max`` bins. At the student's task-aligned positives:
    ``L = weight * T^2 * sum_a w_a * mean_side KL(softmax(d^T/T) || softmax(d^S/T)) / sum_a w_a`` with
    ``w_a = max_c sigma(z^S_ac)`` (detached), as in the LD code. Deviation: LD divides the weighted sum by a fixed
    factor of 4 (mmdet's avg_factor); we divide by the sum of weights so the term is a per-positive mean like
    Ultralytics' DFL loss. Needs ``reg_max > 1`` (YOLO26 heads regress boxes directly and have no distribution).
    """

    requires = frozenset({"box_branch", "scores", "dfl"})
    names = ("ld",)

    def __init__(
        self, s_channels: list[int], t_channels: list[int], *, weight: float = 1.0, temperature: float = 10.0
    ) -> None:
        """Store weight and temperature."""
        super().__init__(s_channels, t_channels)
        self.weight, self.temperature = weight, temperature

    def forward(self, x: KDInputs) -> dict[str, Tensor]:
        """Weighted per-side KL at the student's positive anchors."""
        fg = x.assign("student")[0]  # (B, A) bool
        s, t = x.s_head["boxes"].float(), x.t_head["boxes"].float()  # (B, 4*R, A)
        b, c, a = s.shape
        tau = self.temperature
        s = s.view(b, 4, c // 4, a).permute(0, 3, 1, 2)[fg]  # (P, 4, R)
        t = t.view(b, 4, c // 4, a).permute(0, 3, 1, 2)[fg]
        kl = side_kl(s, t, tau)  # (P,)
        w = x.s_head["scores"].detach().float().sigmoid().amax(1)[fg]
        return {"ld": self.weight * (kl * w).sum() / rank_share(w.sum()).clamp(min=1e-9)}
