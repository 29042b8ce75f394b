"""TAR: task-adaptive regularization with distillation decay (Sun et al., arXiv 2006.13108), adapted to YOLO."""

from __future__ import annotations

import torch
from torch import Tensor

from yolo_kd.losses.base import DistillLoss, KDInputs, adapters
from yolo_kd.losses.functional import (
    binary_kl,
    box_region_imitation,
    decode_boxes,
    gt_slots,
    gt_table,
    paired_iou,
    rank_share,
    side_kl,
)
from yolo_kd.losses.registry import register


@register("tar")
class TAR(DistillLoss):
    """Task-adaptive regularization (TAR, Sun et al., arXiv 2006.13108), adapted to one-stage YOLO.

    Paper: *Distilling Object Detectors with Task Adaptive Regularization*.
    The paper (Faster R-CNN; no code released) distils backbone features, the classification head and the box head
    only where the teacher does better than the student, on regions both models share, with a decaying distillation
    weight. Adapted here (every point is our reading, not the paper's text):

    - shared regions: the union of the teacher's and the student's task-aligned positives (replaces proposal
      sharing); each anchor's GT comes from the teacher assignment where it has one, else the student's;
    - cls: binary KL (T = 2) of all class scores at shared anchors where the teacher's GT-class probability is
      higher than the student's, mean over shared anchors;
    - box: at shared anchors where IoU(teacher box, GT) > IoU(student box, GT), KL of the DFL side distributions
      (T = 10, weight 0.25 as the LD code) or, when either head has reg_max = 1 (YOLO26) or they differ, L1
      between decoded boxes in stride units;
    - feature: 1x1-adapted imitation on the cells of GT boxes whose mean anchor IoU is higher for the teacher,
      per-cell mean;
    - decay: every term x ``1 - (1 - final) * progress`` (linear, to ``final`` = 0 by default), independent of
      the trainer's ``kd_decay``.
    """

    requires = frozenset({"box_branch", "scores"})

    def __init__(
        self,
        s_channels: list[int],
        t_channels: list[int],
        *,
        feat_weight: float = 2.0,
        cls_weight: float = 1.0,
        box_weight: float = 0.25,
        final: float = 0.0,
    ) -> None:
        """Build adapters; only positive-weight terms are logged."""
        super().__init__(s_channels, t_channels)
        self.w = {"feat": feat_weight, "cls": cls_weight, "box": box_weight}
        self.final = final
        self.adapt = adapters(s_channels, t_channels)
        self.names = tuple(f"tar_{k}" for k, v in self.w.items() if v > 0)

    def shared(self, x: KDInputs) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Shared anchors (B, A), their GT slot and box, and teacher / student IoU with it (no grad)."""
        fg_t, j_t, box_t, anchors, stride = x.assign("teacher")
        fg_s, j_s, box_s = x.assign("student")[:3]
        fg = fg_t | fg_s
        j = torch.where(fg_t, j_t, j_s).long()
        gt = torch.where(fg_t[..., None], box_t, box_s).float()
        with torch.no_grad():
            iou_t = paired_iou(decode_boxes(x.t_head["boxes"], anchors, stride), gt)
            iou_s = paired_iou(decode_boxes(x.s_head["boxes"].detach(), anchors, stride), gt)
        return fg, j, anchors, stride, torch.stack([iou_t, iou_s])

    def forward(self, x: KDInputs) -> dict[str, Tensor]:
        """Teacher-better-masked cls / box / feature distillation, decayed over training."""
        fg, j, anchors, stride, (iou_t, iou_s) = self.shared(x)
        scale = 1.0 - (1.0 - self.final) * x.progress
        n = rank_share(fg.sum().float()).clamp(min=1e-9)
        idx, cls, boxes = x.gt
        s_sc, t_sc = x.s_head["scores"].float(), x.t_head["scores"].float()
        out: dict[str, Tensor] = {}
        if self.w["cls"] > 0:
            c = gt_table(idx, cls, fg.shape[0]).gather(1, j)
            better = fg & (t_sc.gather(1, c[:, None])[:, 0] > s_sc.detach().gather(1, c[:, None])[:, 0])
            kl = binary_kl(s_sc / 2, t_sc / 2).sum(1) * 4
            out["tar_cls"] = self.w["cls"] * scale * (kl * better).sum() / n
        if self.w["box"] > 0:
            better = (fg & (iou_t > iou_s)).float()
            s_b, t_b = x.s_head["boxes"].float(), x.t_head["boxes"].float()
            b, ch, a = s_b.shape
            if ch > 4 and t_b.shape[1] == ch:  # equal DFL heads: LD on the side distributions
                r = ch // 4
                sides = lambda v: v.view(b, 4, r, a).permute(0, 3, 1, 2)  # noqa: E731  (B, A, 4, R)
                d = side_kl(sides(s_b), sides(t_b), 10.0)
            else:
                d = (decode_boxes(s_b, anchors, stride) - decode_boxes(t_b, anchors, stride)).abs().sum(-1) / stride.T
            out["tar_box"] = self.w["box"] * scale * (d * better).sum() / n
        if self.w["feat"] > 0:
            slot, m = gt_slots(idx, fg.shape[0])
            key = (torch.arange(fg.shape[0], device=fg.device)[:, None] * m + j)[fg]
            diff = torch.zeros(fg.shape[0] * m, device=fg.device).index_add(0, key, (iou_t - iou_s)[fg])
            better = (diff[idx * m + slot] > 0).float()  # per GT in x.gt order
            vals = [better] * len(x.t_feats)
            feat = box_region_imitation(self.adapt, x.s_feats, x.t_feats, x.strides, boxes, idx, vals)
            out["tar_feat"] = self.w["feat"] * scale * feat
        return {k: out[k] for k in self.names}
