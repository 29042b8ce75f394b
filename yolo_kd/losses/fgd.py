"""FGD: focal and global knowledge distillation (Yang et al., CVPR 2022, arXiv 2111.11837)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from yolo_kd.losses.base import DistillLoss, KDInputs, adapters
from yolo_kd.losses.functional import background_mask, max_per_image, spatial_channel_attention
from yolo_kd.losses.layers import Conv1x1
from yolo_kd.losses.registry import register


def fgd_box_mask(boxes: Tensor, batch_idx: Tensor, bs: int, h: int, w: int, stride: float) -> Tensor:
    """FGD foreground mask of one level (Yang et al., CVPR 2022), vectorised over boxes.

    As the official code: a box covers cells ``floor(x1)..ceil(x2)`` and ``floor(y1)..ceil(y2)`` inclusive (in level
    cells), each covered cell gets ``1 / (rows * cols)`` of that span, overlapping boxes take the max.

    Args:
        boxes (Tensor): (N, 4) xyxy in input-image pixels.
        batch_idx (Tensor): (N,) image index of each box.
        bs (int): Batch size.
        h (int): Level height in cells.
        w (int): Level width in cells.
        stride (float): Level stride in pixels.

    Returns:
        (Tensor): (B, H, W) mask, zero off the boxes.
    """
    if boxes.numel() == 0:
        return boxes.new_zeros(bs, h, w)
    b = boxes / stride
    x0, x1, y0, y1 = b[:, 0].floor(), b[:, 2].ceil(), b[:, 1].floor(), b[:, 3].ceil()
    area = 1.0 / ((y1 + 1 - y0) * (x1 + 1 - x0))
    xs = torch.arange(w, device=b.device, dtype=b.dtype)
    ys = torch.arange(h, device=b.device, dtype=b.dtype)
    inx = (xs[None] >= x0[:, None]) & (xs[None] <= x1[:, None])  # (N, W)
    iny = (ys[None] >= y0[:, None]) & (ys[None] <= y1[:, None])  # (N, H)
    m = (iny[:, :, None] & inx[:, None, :]).to(b.dtype) * area[:, None, None]
    return max_per_image(m, batch_idx, bs)


class GcBlock(nn.Module):
    """Global-context block of FGD's relation loss: ``x + T(sum_j softmax(W_k x)_j x_j)`` (Cao et al., GCNet)."""

    def __init__(self, c: int) -> None:
        """Context mask conv and the bottleneck transform (last conv zero-initialised, as the official code)."""
        super().__init__()
        self.mask = Conv1x1(c, 1)
        self.add = nn.Sequential(
            Conv1x1(c, c // 2), nn.LayerNorm([c // 2, 1, 1]), nn.ReLU(inplace=True), Conv1x1(c // 2, c)
        )
        nn.init.kaiming_normal_(self.mask.weight, mode="fan_in")
        nn.init.zeros_(self.add[-1].weight)
        nn.init.zeros_(self.add[-1].bias)

    def forward(self, x: Tensor) -> Tensor:
        """Add the channel transform of the attention-pooled global context to every position."""
        b, c = x.shape[:2]
        attn = F.softmax(self.mask(x).view(b, 1, -1), dim=2)  # (B, 1, HW)
        context = torch.bmm(x.view(b, c, -1), attn.transpose(1, 2)).view(b, c, 1, 1)
        return x + self.add(context)


@register("fgd")
class FGD(DistillLoss):
    """Focal and global distillation (FGD, Yang et al., CVPR 2022, arXiv 2111.11837).

    Per level, with the aligned student map S (1x1 conv when widths differ), teacher attention
    ``S_t = HW softmax(mean_c|T|/tau)``, ``C_t = C softmax(mean_hw|T|/tau)``, the box mask ``M_fg`` (``1/(h_b w_b)``
    inside each box, see ``fgd_box_mask``) and ``M_bg = 1/N_bg`` off the boxes:
    ``fg = sum M_fg S_t C_t (S - T)^2 / N``, ``bg`` likewise, ``att = sum|C_s - C_t| / N + sum|S_s - S_t| / N``,
    ``rela = sum (Gc_s(S) - Gc_t(T))^2 / N`` (one GcBlock per side and level, trained).
    ``L = alpha fg + beta bg + gamma att + lam rela``; one-stage defaults of the official configs: tau 0.5,
    alpha 1e-3, beta 5e-4, gamma 5e-4, lam 5e-6. Kept as in the paper: sums over channels (so the loss grows with
    teacher width) and no ``init_student`` (impossible across widths).
    """

    def __init__(
        self,
        s_channels: list[int],
        t_channels: list[int],
        *,
        alpha: float = 1e-3,
        beta: float = 5e-4,
        gamma: float = 5e-4,
        lam: float = 5e-6,
        tau: float = 0.5,
    ) -> None:
        """Build aligners and the student/teacher GcBlocks per level; only positive-weight terms are logged."""
        super().__init__(s_channels, t_channels)
        self.w = {"fg": alpha, "bg": beta, "att": gamma, "rela": lam}
        self.tau = tau
        self.align = adapters(s_channels, t_channels, "align")
        self.gc_s = nn.ModuleList(GcBlock(t) for t in t_channels)
        self.gc_t = nn.ModuleList(GcBlock(t) for t in t_channels)
        self.names = tuple(f"fgd_{k}" for k, v in self.w.items() if v > 0)

    def level_terms(self, i: int, s: Tensor, t: Tensor, fg: Tensor) -> dict[str, Tensor]:
        """Unweighted fg / bg / att / rela terms of level ``i``; ``s`` is the aligned student map."""
        n = s.shape[0]
        s_t, c_t = spatial_channel_attention(t, self.tau)
        s_s, c_s = spatial_channel_attention(s, self.tau)
        d = (s - t) ** 2 * s_t[:, None] * c_t[:, :, None, None]
        return {
            "fg": (d * fg[:, None]).sum() / n,
            "bg": (d * background_mask(fg)[:, None]).sum() / n,
            "att": ((c_s - c_t).abs().sum() + (s_s - s_t).abs().sum()) / n,
            "rela": ((self.gc_s[i](s) - self.gc_t[i](t)) ** 2).sum() / n,
        }

    def forward(self, x: KDInputs) -> dict[str, Tensor]:
        """Weighted terms summed over levels."""
        idx, _, boxes = x.gt
        total = {k: torch.zeros((), device=x.s_feats[0].device) for k in self.w}
        for i, (a, s, t, stride) in enumerate(zip(self.align, x.s_feats, x.t_feats, x.strides)):
            b, _, h, w = t.shape
            fg = fgd_box_mask(boxes, idx, b, h, w, stride)
            for k, v in self.level_terms(i, a(s.float()), t.float(), fg).items():
                total[k] = total[k] + v
        return {f"fgd_{k}": self.w[k] * v for k, v in total.items() if self.w[k] > 0}
