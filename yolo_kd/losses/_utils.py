"""Shared tensor helpers for distillation methods: attention maps, box masks, per-level head splits."""

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


def level_of_anchor(feats: list[Tensor]) -> Tensor:
    """Return the level index of each anchor (A,), in the head's concatenation order."""
    return torch.cat([torch.full((f.shape[-2] * f.shape[-1],), i, device=f.device) for i, f in enumerate(feats)])


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


def gaussian_box_mask(
    boxes: Tensor, batch_idx: Tensor, bs: int, h: int, w: int, stride: float, expand: float = 2.0
) -> Tensor:
    """Bounding-box-aware foreground mask of one level (BMFI, Lan & Tian 2024), vectorised over boxes.

    Each GT box is expanded ``expand`` times about its centre; cells inside the box get 1, cells in the expanded ring
    get exp(-((x-cx)/sx)^2/2) * exp(-((y-cy)/sy)^2/2) with sx, sy = half the expanded width, height; the patch is
    scaled by 1/(expanded area in cells) and overlapping boxes take the max. Box sizes are counted in whole cells
    (floor/ceil) and a cell is inside when it overlaps the box, as in the authors' code; unlike that code, the
    expanded patch is centred on the box (the released code pastes it into a 2x map and crops, which shifts it).

    Args:
        boxes (Tensor): (N, 4) xyxy in input-image pixels.
        batch_idx (Tensor): (N,) image index of each box.
        bs (int): Batch size.
        h (int): Level height in cells.
        w (int): Level width in cells.
        stride (float): Level stride in pixels.
        expand (float): Expansion factor of the Gaussian ring.

    Returns:
        (Tensor): (B, H, W) mask, zero where no box reaches.
    """
    if boxes.numel() == 0:
        return boxes.new_zeros(bs, h, w)
    b = boxes / stride  # level cells
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    # box size in whole cells, as the authors' code quantises it (floor/ceil), so a tiny box still covers a cell
    bw = (b[:, 2].ceil() - b[:, 0].floor()).clamp(min=1)
    bh = (b[:, 3].ceil() - b[:, 1].floor()).clamp(min=1)
    ew, eh = bw * expand, bh * expand
    xs = torch.arange(w, device=b.device, dtype=b.dtype) + 0.5  # cell centres
    ys = torch.arange(h, device=b.device, dtype=b.dtype) + 0.5
    dx = xs[None, :] - cx[:, None]  # (N, W)
    dy = ys[None, :] - cy[:, None]  # (N, H)
    gx = torch.exp(-0.5 * (dx / (ew[:, None] / 2)) ** 2) * (dx.abs() <= ew[:, None] / 2)
    gy = torch.exp(-0.5 * (dy / (eh[:, None] / 2)) ** 2) * (dy.abs() <= eh[:, None] / 2)
    m = gy[:, :, None] * gx[:, None, :]  # (N, H, W)
    m = torch.where(cells_in_boxes(b, h, w), torch.ones_like(m), m)  # 1 on cells the box overlaps
    return max_per_image(m / (ew * eh)[:, None, None], batch_idx, bs)


def background_mask(fg: Tensor) -> Tensor:
    """FGD background mask: 1/N_bg on cells where the foreground mask is zero, per image; (B, H, W)."""
    bg = (fg <= 0).to(fg.dtype)
    return bg / bg.sum((1, 2), keepdim=True).clamp(min=1.0)


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


def segment_log_softmax(v: Tensor, seg: Tensor, n: int) -> Tensor:
    """Log-softmax of ``v`` (P,) within groups ``seg`` (P,) in [0, n)."""
    mx = v.new_full((n,), float("-inf")).scatter_reduce(0, seg, v.detach(), reduce="amax")
    e = (v - mx[seg]).exp()
    return v - mx[seg] - v.new_zeros(n).index_add(0, seg, e).log()[seg]
