"""FitNets-style L2 feature mimicking on the Detect inputs."""

from __future__ import annotations

from torch import Tensor

from yolo_kd.losses.base import DistillLoss, KDInputs, adapters
from yolo_kd.losses.registry import register


@register("mimic")
class Mimic(DistillLoss):
    """L2 mimic of teacher P3-P5 through 1x1 adapters (FitNets, Romero et al., ICLR 2015, arXiv 1412.6550).

    ``L = weight * sum_l mean_{b,c,h,w} (F^T_l - phi_l(F^S_l))^2``. FitNets writes 1/2 * ||.||^2 summed over the
    hint layer; we take the mean over elements instead so the term has the same order as Ultralytics' per-image
    detection loss regardless of channel count and image size.
    """

    names = ("mimic",)

    def __init__(
        self, s_channels: list[int], t_channels: list[int], *, weight: float = 2.0, adapter: str = "conv"
    ) -> None:
        """Build one 1x1 adapter per level."""
        super().__init__(s_channels, t_channels)
        self.weight = weight
        self.adapt = adapters(s_channels, t_channels, adapter)

    def forward(self, x: KDInputs) -> dict[str, Tensor]:
        """Mean squared error per level, summed over levels."""
        loss = sum(((a(s.float()) - t.float()) ** 2).mean() for a, s, t in zip(self.adapt, x.s_feats, x.t_feats))
        return {"mimic": self.weight * loss}
