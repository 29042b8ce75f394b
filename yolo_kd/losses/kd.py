"""Classification logit distillation for YOLO's per-class sigmoid head."""

from __future__ import annotations

from torch import Tensor

from yolo_kd.losses.base import DistillLoss, KDInputs
from yolo_kd.losses.functional import binary_kl, rank_share
from yolo_kd.losses.registry import register


@register("kd")
class LogitKD(DistillLoss):
    """Soft-label KD (Hinton et al., 2015, arXiv 1503.02531) adapted to YOLO's per-class sigmoid scores.

    YOLO scores every class with an independent sigmoid, so the softmax KL of Hinton et al. becomes a sum of
    binary KLs: ``L = weight * T^2 * sum_{a,c} w_a KL(sigma(z^T_ac / T) || sigma(z^S_ac / T)) / sum_a w_a`` with
    ``w_a = max_c sigma(z^T_ac)`` the teacher's confidence at anchor ``a`` (so the ~99% background anchors do not
    swamp the signal). The binary KL equals BCE against the teacher's soft target minus that target's entropy: the
    gradient is the BCE's, and the value is 0 when the student matches. ``T^2`` keeps gradient scale as in Hinton.
    """

    names = ("kd",)
    requires = frozenset({"scores"})

    def __init__(
        self, s_channels: list[int], t_channels: list[int], *, weight: float = 1.0, temperature: float = 2.0
    ) -> None:
        """Store weight and temperature."""
        super().__init__(s_channels, t_channels)
        self.weight, self.temperature = weight, temperature

    def forward(self, x: KDInputs) -> dict[str, Tensor]:
        """Confidence-weighted binary KL over anchors and classes."""
        t, s, tau = x.t_head["scores"].float(), x.s_head["scores"].float(), self.temperature
        w = t.sigmoid().amax(1, keepdim=True)  # (B, 1, A)
        kl = binary_kl(s / tau, t / tau)  # (B, nc, A)
        loss = (kl * w).sum() / rank_share(w.sum()).clamp(min=1e-9) * tau**2
        return {"kd": self.weight * loss}
