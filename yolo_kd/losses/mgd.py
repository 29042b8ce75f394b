"""MGD: masked generative distillation (Yang et al., ECCV 2022, arXiv 2205.01529)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from yolo_kd.losses.base import DistillLoss, KDInputs, adapters
from yolo_kd.losses.registry import register


@register("mgd")
class MGD(DistillLoss):
    """Masked generative distillation (MGD, Yang et al., ECCV 2022, arXiv 2205.01529).

    The (1x1-aligned) student map is masked at random positions - each position dropped with probability
    ``ratio`` (0.65), the same mask for all channels - and a generator conv3x3-ReLU-conv3x3 must reconstruct the
    teacher map: ``L = alpha * sum_l sum (G(M . F^S_l) - F^T_l)^2 / N``. Defaults alpha = 2e-5, ratio = 0.65
    (paper, MMRazor). As in the paper the loss is a per-image *sum* over C x H x W, so it grows with teacher
    width and input size (tuned by the authors for ~1333x800 inputs); no re-scaling was applied.
    """

    names = ("mgd",)

    def __init__(
        self, s_channels: list[int], t_channels: list[int], *, alpha: float = 2e-5, ratio: float = 0.65
    ) -> None:
        """Build the 1x1 aligners (where channels differ) and the generators."""
        super().__init__(s_channels, t_channels)
        if not 0 <= ratio < 1:
            from yolo_kd.errors import KDError

            raise KDError(f"mgd_ratio={ratio} must be in [0, 1)")
        self.alpha, self.ratio = alpha, ratio
        self.align = adapters(s_channels, t_channels, "align")
        self.generator = nn.ModuleList(
            nn.Sequential(nn.Conv2d(t, t, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(t, t, 3, padding=1))
            for t in t_channels
        )

    def mask(self, f: Tensor) -> Tensor:
        """Random (N, 1, H, W) keep-mask: 0 with probability ``ratio``."""
        return (torch.rand(f.shape[0], 1, *f.shape[2:], device=f.device) > self.ratio).to(f.dtype)

    def forward(self, x: KDInputs) -> dict[str, Tensor]:
        """Generation loss summed over levels."""
        loss = 0.0
        for a, g, s, t in zip(self.align, self.generator, x.s_feats, x.t_feats):
            s = a(s.float())
            loss = loss + ((g(s * self.mask(s)) - t.float()) ** 2).sum() / s.shape[0]
        return {"mgd": self.alpha * loss}
