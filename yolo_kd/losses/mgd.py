"""MGD: masked generative distillation (Yang et al., ECCV 2022, arXiv 2205.01529)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
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

    Computation (ours, same formula): where a 1x1 aligner ``A, a`` widens the student map (C_s < C_t), the first
    generator convolution ``W1`` is applied to the masked student map directly with the folded weight ``W1 . A``
    (C_t x C_s x 3 x 3) plus ``W1 . a`` on the mask: ``W1 * ((A s + a) . M) = (W1 A) * (s . M) + (W1 a) * M``. It is
    exact algebra (results equal up to FP32 summation order, tests/losses/test_mgd.py) with the same parameters and
    gradients, and it halves that convolution's work when the student is half as wide. Building ``W1 . A`` costs
    ``C_t C_s`` per output channel and tap, so a level folds only where the convolution work saved is at least
    ``FOLD_GAIN`` times that (small late maps of a wide teacher keep the aligner; docs/benchmarks.md D7).
    """

    names = ("mgd",)

    @classmethod
    def check_args(cls, args: dict) -> None:
        """``ratio`` (the masked share) is in [0, 1)."""
        super().check_args(args)
        if not 0 <= args["ratio"] < 1:
            from yolo_kd.errors import KDError

            raise KDError(f"mgd_ratio={args['ratio']} must be in [0, 1)")

    def __init__(
        self, s_channels: list[int], t_channels: list[int], *, alpha: float = 2e-5, ratio: float = 0.65
    ) -> None:
        """Build the 1x1 aligners (where channels differ) and the generators."""
        super().__init__(s_channels, t_channels)
        self.alpha, self.ratio = alpha, ratio
        self.align = adapters(s_channels, t_channels, "align")
        self.generator = nn.ModuleList(
            nn.Sequential(nn.Conv2d(t, t, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(t, t, 3, padding=1))
            for t in t_channels
        )

    def mask(self, f: Tensor) -> Tensor:
        """Random (N, 1, H, W) keep-mask: 0 with probability ``ratio``."""
        return (torch.rand(f.shape[0], 1, *f.shape[2:], device=f.device) > self.ratio).to(f.dtype)

    def generate(self, level: int, s: Tensor, keep: Tensor) -> Tensor:
        """``G(M . A(s))`` for one level: aligner folded into the first convolution where that saves work."""
        a, g = self.align[level], self.generator[level]
        if not folds(a, s):
            return g(a(s) * keep)
        conv1 = g[0]
        w = torch.einsum("kcij,cs->ksij", conv1.weight, a.weight[:, :, 0, 0])  # W1 . A
        y = F.conv2d(s * keep, w, conv1.bias, padding=1)
        if a.bias is not None:
            y = y + F.conv2d(keep, torch.einsum("kcij,c->kij", conv1.weight, a.bias)[:, None], padding=1)
        return g[2](g[1](y))

    def forward(self, x: KDInputs) -> dict[str, Tensor]:
        """Generation loss summed over levels."""
        loss = 0.0
        for level, (s, t) in enumerate(zip(x.s_feats, x.t_feats)):
            s = s.float()
            loss = loss + ((self.generate(level, s, self.mask(s)) - t.float()) ** 2).sum() / s.shape[0]
        return {"mgd": self.alpha * loss}


FOLD_GAIN = 4  # fold where the 3x3 work saved is >= this many times the work of building W1 . A (D7)


def folds(align: nn.Module, s: Tensor) -> bool:
    """Whether folding ``align`` (a 1x1 C_s -> C_t conv, or Identity) into the first 3x3 convolution saves work."""
    if not isinstance(align, nn.Conv2d):
        return False
    c_s, c_t = align.in_channels, align.out_channels
    cells = s.shape[0] * s.shape[2] * s.shape[3]
    return (c_t - c_s) * cells >= FOLD_GAIN * c_t * c_s
