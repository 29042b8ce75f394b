"""Gradient importance maps for feature imitation (GKD, Lan & Tian, WACV 2024): maps, gates, targets, the weighted sum.

Shared by ``gkd`` and ``gkdpaper``; each function is one formula with its normaliser, tested by hand in
tests/losses/test_gkd.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from yolo_kd.losses.base import Assignment, batch_targets
from yolo_kd.losses.functional import cells_in_boxes, gt_table, max_per_image, rank_share


def grad_cam(feat: Tensor, grad: Tensor, eps: float = 1e-12) -> Tensor:
    """Grad-CAM importance map of a level (the paper's construction), min-max normalised per image to [0, 1].

    ``w_k = mean_ij dL/dA_ijk`` (Eq. 1), ``M = ReLU(sum_k w_k A_k)``, then ``(M - min) / (max - min)`` per image as
    the authors' ``scale_cam_image`` does. Gradients flow through ``feat`` only (``grad`` is treated as constant).

    Args:
        feat (Tensor): Activations (B, C, H, W).
        grad (Tensor): dL/d(feat), same shape.
        eps (float): Guard for constant maps (they normalise to all zeros).

    Returns:
        (Tensor): (B, H, W) map in [0, 1].
    """
    w = grad.detach().mean((2, 3), keepdim=True)
    cam = F.relu((w * feat).sum(1))
    flat = cam.flatten(1)
    lo, hi = flat.min(1).values, flat.max(1).values
    return (cam - lo[:, None, None]) / (hi - lo).clamp(min=eps)[:, None, None]


def cell_map(feat: Tensor, grad: Tensor, eps: float = 1e-12) -> Tensor:
    """Per-cell gradient x activation ``|sum_k g_ijk A_ijk|``, divided by its per-image max (ours, not the paper's).

    Without Grad-CAM's spatial pooling of the gradient each cell keeps the sign of its own evidence, so the map
    lands on objects: on a trained teacher (issue 15) it puts ~80 % of its P3 mass in boxes, where the pooled map
    puts ~5 % (chance level; 35 % on letterbox padding) and is all zero on 20-38 % of P5 maps.

    Args:
        feat (Tensor): Activations (B, C, H, W).
        grad (Tensor): dL/d(feat), same shape (treated as constant).
        eps (float): Guard for all-zero maps (they stay zero).

    Returns:
        (Tensor): (B, H, W) map in [0, 1].
    """
    m = (grad.detach() * feat).sum(1).abs()
    return m / m.flatten(1).max(1).values.clamp(min=eps)[:, None, None]


def score_target(logits: Tensor, a: Assignment, batch: dict) -> Tensor:
    """Sum over positive anchors of the logit of their assigned object's class: the target of a score Grad-CAM.

    Objects are indexed per image in order of appearance, as Ultralytics' loss lays them out (``a.gt_idx``).

    Args:
        logits (Tensor): (B, nc, A) class logits (student class order).
        a (Assignment): Task-aligned assignment of the same anchors (``fg``, ``gt_idx``).
        batch (dict): Ultralytics target batch whose labels the assignment used.

    Returns:
        (Tensor): Scalar ``sum_{b,a in fg} logits[b, cls(b, gt_idx[b, a]), a]``.
    """
    idx, cls, _ = batch_targets(batch)
    cls_at = gt_table(idx, cls.to(idx.device), logits.shape[0]).gather(1, a.gt_idx.long())  # (B, A) class per anchor
    return (logits.gather(1, cls_at.unsqueeze(1)).squeeze(1) * a.fg).sum()


def degenerate(m: Tensor, eps: float = 1e-6) -> Tensor:
    """(B,) True where an image's map is all zero or constant (it would weight nothing or everything alike)."""
    flat = m.detach().flatten(1)
    return (flat.max(1).values - flat.min(1).values) <= eps


def uniform_if_degenerate(maps: list[Tensor], counts: list[int], name: str) -> list[Tensor]:
    """Uniform weights for images whose map is degenerate; add them to ``counts`` per level and log it once."""
    out = []
    for i, m in enumerate(maps):
        bad = degenerate(m)
        if bad.any():
            if not any(counts):
                from ultralytics.utils import LOGGER

                LOGGER.warning(f"{name}: degenerate (all-zero or constant) map on level {i}; uniform weights used "
                               "there (counted in .degenerate)")  # fmt: skip
            counts[i] += int(bad.sum())
            m = torch.where(bad[:, None, None], torch.ones_like(m), m)
        out.append(m)
    return out


def box_gate(maps: list[Tensor], boxes: Tensor, idx: Tensor, strides: list[float]) -> list[Tensor]:
    """Zero each map off the cells its image's boxes overlap (images without boxes get an all-zero map)."""
    out = []
    for m, stride in zip(maps, strides):
        b, h, w = m.shape
        inside = cells_in_boxes(boxes / stride, h, w).to(m.dtype) if len(boxes) else m.new_zeros(0, h, w)
        out.append(m * max_per_image(inside, idx, b))
    return out


def weighted_imitation(s: Tensor, t: Tensor, m: Tensor) -> Tensor:
    """``sum_{b,ij} M * sum_c (t - s)^2 / (C * sum M)`` for (B, C, H, W) maps and a (B, H, W) weight."""
    return (m.unsqueeze(1) * (t - s) ** 2).sum() / (s.shape[1] * rank_share(m.sum())).clamp(min=1e-9)


def pseudo_targets(pred: Tensor, shape: tuple[int, int], conf: float, max_det: int) -> dict[str, Tensor]:
    """Teacher detections (score > conf, top ``max_det`` per image after NMS) as an Ultralytics target batch."""
    from ultralytics.utils.nms import non_max_suppression

    dets = non_max_suppression(pred.detach().float(), conf_thres=conf, max_det=max_det)
    h, w = shape
    scale = pred.new_tensor([w, h, w, h]).float()
    boxes = torch.cat([d[:, :4] for d in dets]) / scale
    xywh = torch.cat([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], 1)
    idx = torch.cat([torch.full((len(d),), i, device=pred.device) for i, d in enumerate(dets)]).float()
    cls = torch.cat([d[:, 5:6] for d in dets])
    return {"batch_idx": idx, "cls": cls, "bboxes": xywh}  # teacher class ids
