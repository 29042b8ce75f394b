"""Shared tensor primitives of the distillation methods (each used by two or more methods).

A helper used by one method only lives in that method's file.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def rank_share(t: Tensor) -> Tensor:
    """A batch-level normaliser (count or weight sum) made global under DDP: its sum over ranks / world size.

    With it, per-rank terms ``num_r / share`` average to ``sum num / sum den``, so DDP's averaged gradients equal one
    process on the global batch (mmdet's ``reduce_mean(num_pos)``). The value is global, the gradient local; a
    no-op without an initialised process group. Every rank must call it the same number of times (no data-dependent
    early return before it).
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return t
    g = t.detach().float().clone()
    dist.all_reduce(g)
    return t + (g / dist.get_world_size() - t.detach()).to(t.dtype)


def spatial_channel_attention(f: Tensor, tau: float) -> tuple[Tensor, Tensor]:
    """FGD/Zhang & Ma attention: S = HW*softmax(mean_c|F|/tau) (B, H, W) and C = C*softmax(mean_hw|F|/tau) (B, C)."""
    b, c, h, w = f.shape
    a = f.abs()
    s = h * w * F.softmax((a.mean(1) / tau).view(b, -1), dim=1).view(b, h, w)
    ch = c * F.softmax(a.mean((2, 3)) / tau, dim=1)
    return s, ch


def split_levels(t: Tensor, feats: list[Tensor]) -> list[Tensor]:
    """Split a (B, K, A) head tensor into per-level (B, K, H_l, W_l) maps using the level feature shapes."""
    sizes = [f.shape[-2] * f.shape[-1] for f in feats]
    return [p.view(*p.shape[:2], *f.shape[-2:]) for p, f in zip(t.split(sizes, dim=-1), feats)]


def cells_in_boxes(b: Tensor, h: int, w: int) -> Tensor:
    """(N, H, W) bool: which cells of an H x W level each box overlaps; ``b`` is (N, 4) xyxy in level cells."""
    xs = torch.arange(w, device=b.device, dtype=b.dtype)
    ys = torch.arange(h, device=b.device, dtype=b.dtype)
    inx = (xs[None] < b[:, 2:3]) & (xs[None] + 1 > b[:, 0:1])  # (N, W)
    iny = (ys[None] < b[:, 3:4]) & (ys[None] + 1 > b[:, 1:2])  # (N, H)
    return iny[:, :, None] & inx[:, None, :]


def max_per_image(m: Tensor, batch_idx: Tensor, bs: int) -> Tensor:
    """Reduce per-box (N, H, W) maps to (B, H, W) by the max over each image's boxes (0 where none reaches)."""
    out = m.new_zeros(bs, *m.shape[1:])
    return out.scatter_reduce(0, batch_idx.long().view(-1, 1, 1).expand_as(m), m, reduce="amax", include_self=True)


def background_mask(fg: Tensor) -> Tensor:
    """FGD background mask: 1/N_bg on cells where the foreground mask is zero, per image; (B, H, W)."""
    bg = (fg <= 0).to(fg.dtype)
    return bg / bg.sum((1, 2), keepdim=True).clamp(min=1.0)


def gt_slots(batch_idx: Tensor, bs: int) -> tuple[Tensor, int]:
    """Slot of every GT within its image (the j of Ultralytics' ``target_gt_idx``) and the largest per-image count."""
    idx = batch_idx.long().view(-1)
    n = torch.bincount(idx, minlength=bs)
    order = torch.argsort(idx, stable=True)
    slot = torch.empty_like(idx)
    slot[order] = torch.arange(len(idx), device=idx.device) - (n.cumsum(0) - n)[idx[order]]
    return slot, max(int(n.max()) if len(idx) else 0, 1)


def gt_table(batch_idx: Tensor, values: Tensor, bs: int) -> Tensor:
    """Per-image GT slots (B, max_n, ...) in the order of Ultralytics' ``v8DetectionLoss.preprocess``.

    An assigner's ``target_gt_idx`` j of image b then indexes ``table[b, j]``.
    """
    slot, n = gt_slots(batch_idx, bs)
    out = values.new_zeros(bs, n, *values.shape[1:])
    out[batch_idx.long().view(-1), slot] = values
    return out


def box_value_map(boxes: Tensor, batch_idx: Tensor, values: Tensor, bs: int, h: int, w: int, stride: float) -> Tensor:
    """(B, H, W) map: each cell overlapping a GT box gets that box's value (max over overlapping boxes), else 0."""
    if boxes.numel() == 0:
        return boxes.new_zeros(bs, h, w)
    b = boxes / stride
    m = cells_in_boxes(b, h, w).to(b.dtype) * values.view(-1, 1, 1).to(b.dtype)
    return max_per_image(m, batch_idx, bs)


def box_region_imitation(
    adapt, s_feats: list[Tensor], t_feats: list[Tensor], strides: list[float], boxes: Tensor, batch_idx: Tensor,
    values: list[Tensor],
) -> Tensor:  # fmt: skip
    """Per-cell channel-mean imitation ``(F^T - phi(F^S))^2`` on the cells of GT boxes.

    Each box is weighted by its value on that level (``values[l]``, (N,)); summed over levels and divided by the
    number of weighted cells.
    """
    num, den = s_feats[0].new_zeros(()).float(), 0.0
    for a, s, t, stride, v in zip(adapt, s_feats, t_feats, strides, values):
        m = box_value_map(boxes, batch_idx, v, t.shape[0], t.shape[2], t.shape[3], stride)
        num = num + (m * (t.float() - a(s.float())).pow(2).mean(1)).sum()
        den = den + (m > 0).sum()
    return num / rank_share(torch.as_tensor(den, dtype=torch.float32, device=boxes.device)).clamp(min=1e-9)


def decode_boxes(distri: Tensor, anchor_points: Tensor, stride: Tensor) -> Tensor:
    """Decode a raw (B, 4*R, A) box head to (B, A, 4) xyxy pixels (DFL expectation when R > 1, else ltrb as is)."""
    b, c, a = distri.shape
    r = c // 4
    d = distri.float().view(b, 4, r, a)
    if r > 1:
        d = (d.softmax(2) * torch.arange(r, device=d.device, dtype=d.dtype).view(1, 1, r, 1)).sum(2)
    else:
        d = d[:, :, 0]
    lt, rb = d[:, :2].transpose(1, 2), d[:, 2:].transpose(1, 2)  # (B, A, 2)
    return torch.cat([anchor_points - lt, anchor_points + rb], -1) * stride


def paired_iou(a: Tensor, b: Tensor, eps: float = 1e-9) -> Tensor:
    """IoU of corresponding xyxy boxes (..., 4) and (..., 4)."""
    wh = (torch.minimum(a[..., 2:], b[..., 2:]) - torch.maximum(a[..., :2], b[..., :2])).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    area = lambda x: (x[..., 2] - x[..., 0]).clamp(min=0) * (x[..., 3] - x[..., 1]).clamp(min=0)  # noqa: E731
    return inter / (area(a) + area(b) - inter + eps)


def binary_kl(s_logits: Tensor, t_logits: Tensor) -> Tensor:
    """Elementwise KL(Bern(sigmoid(t)) || Bern(sigmoid(s))), i.e. BCE(s, sigmoid(t)) minus the target's entropy."""
    p = t_logits.sigmoid()
    return p * (F.logsigmoid(t_logits) - F.logsigmoid(s_logits)) + (1 - p) * (
        F.logsigmoid(-t_logits) - F.logsigmoid(-s_logits)
    )


def side_kl(s: Tensor, t: Tensor, tau: float) -> Tensor:
    """``T^2 * mean_side KL(softmax(t / T) || softmax(s / T))`` over the bins of (..., 4, R) box distributions."""
    kl = F.kl_div(F.log_softmax(s / tau, -1), F.log_softmax(t / tau, -1), log_target=True, reduction="none")
    return kl.sum(-1).mean(-1) * tau**2


def binary_distill(s_logits: Tensor, t_logits: Tensor, beta: float = 1.0) -> Tensor:
    """Elementwise ``BCE(z_s, sigma(z_t)) * |sigma(z_t) - sigma(z_s)|^beta`` (the teacher's target detached).

    Each class map is its own binary problem with the teacher's probability as soft label; the modulating factor
    (as Quality Focal Loss, not detached) makes matched predictions cost nothing.
    """
    p_t = t_logits.detach().sigmoid()
    return F.binary_cross_entropy_with_logits(s_logits, p_t, reduction="none") * (p_t - s_logits.sigmoid()).abs().pow(
        beta
    )


def giou_loss(a: Tensor, b: Tensor) -> Tensor:
    """``1 - GIoU`` of corresponding xyxy boxes (..., 4), via Ultralytics' ``bbox_iou``."""
    from ultralytics.utils.metrics import bbox_iou

    return 1 - bbox_iou(a, b, xywh=False, GIoU=True).squeeze(-1)
