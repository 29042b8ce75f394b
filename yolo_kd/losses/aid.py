"""AID: adaptive instance distillation (Lan & Tian, ICPR 2022, arXiv 2201.11097)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from yolo_kd.errors import KDError
from yolo_kd.losses.base import DistillLoss, KDInputs, adapters
from yolo_kd.losses.functional import (
    binary_kl,
    box_region_imitation,
    decode_boxes,
    gt_slots,
    gt_table,
    paired_iou,
    rank_share,
)
from yolo_kd.losses.registry import register


def level_of_anchor(feats: list[Tensor]) -> Tensor:
    """Return the level index of each anchor (A,), in the head's concatenation order."""
    return torch.cat([torch.full((f.shape[-2] * f.shape[-1],), i, device=f.device) for i, f in enumerate(feats)])


@register("aid")
class AID(DistillLoss):
    """Adaptive instance distillation (AID, Lan & Tian, ICPR 2022, arXiv 2201.11097).

    Each GT instance j is weighted by how hard it is for the teacher: ``w_j = exp(-alpha * D_j)`` (alpha 0.1),
    ``D_j`` = the teacher's own task loss on j. Here D_j is the mean over the anchors the task-aligned assigner gives
    j (teacher side, no backward) of ``(1 - IoU(teacher box, GT)) + BCE(teacher GT-class logit, IoU)``, divided by
    its mean over the batch's instances, so D ~ 1 whatever Ultralytics' loss gains are and alpha transfers from the
    paper (mmdet GFL losses are ~1 per instance). The weights multiply the wrapped distillation, which here is
    (a) feature imitation through 1x1 adapters on the cells of each instance's box (``feat_weight`` 2, per-cell
    mean) and (b) binary-KL logit KD at the instance's anchors (``logit_weight`` 1, T = 2, per-anchor mean);
    the paper plugs AID into other KD losses (its code: Zhang & Ma's). ``mode='level'``: one weight per level per
    batch from the level's mean teacher loss, as the released ``kd_att_sw.py`` does. Self-distillation: pass an
    earlier checkpoint of the same architecture as ``teacher=``.
    """

    requires = frozenset({"box_branch", "scores"})

    @classmethod
    def check_args(cls, args: dict) -> None:
        """``mode`` is instance or level."""
        super().check_args(args)
        if args["mode"] not in {"instance", "level"}:
            raise KDError(f"aid_mode must be instance or level, got {args['mode']}")

    def __init__(
        self,
        s_channels: list[int],
        t_channels: list[int],
        *,
        alpha: float = 0.1,
        mode: str = "instance",
        feat_weight: float = 2.0,
        logit_weight: float = 1.0,
        temperature: float = 2.0,
        adapter: str = "conv",
    ) -> None:
        """Build adapters; only terms with a positive weight are logged."""
        super().__init__(s_channels, t_channels)
        self.alpha, self.mode, self.temperature = alpha, mode, temperature
        self.w = {"feat": feat_weight, "logit": logit_weight}
        self.adapt = adapters(s_channels, t_channels, adapter)
        self.names = tuple(f"aid_{k}" for k, v in self.w.items() if v > 0)

    def teacher_anchor_loss(self, x: KDInputs) -> tuple[Tensor, Tensor, Tensor]:
        """Teacher assignment (fg (B, A), gt slot (B, A)) and its per-anchor task loss (B, A), no grad."""
        fg, gt_idx, t_boxes, anchors, stride = x.assign("teacher")
        with torch.no_grad():
            iou = paired_iou(decode_boxes(x.t_head["boxes"], anchors, stride), t_boxes.float()).clamp(0, 1)
            idx, cls, _ = x.gt
            c = gt_table(idx, cls, fg.shape[0]).gather(1, gt_idx.long())  # (B, A) GT class per anchor
            z = x.t_head["scores"].float().gather(1, c.unsqueeze(1)).squeeze(1)
            loss = (1 - iou) + F.binary_cross_entropy_with_logits(z, iou, reduction="none")
        return fg, gt_idx.long(), loss

    def weights(self, x: KDInputs) -> tuple[Tensor, Tensor, Tensor]:
        """(fg, weight per anchor (B, A), weight per GT in x.gt order (N,)) for the chosen mode."""
        fg, gt_idx, loss = self.teacher_anchor_loss(x)
        idx = x.gt[0]
        bs, slots = fg.shape[0], gt_slots(idx, fg.shape[0])
        if self.mode == "instance":
            key = torch.arange(bs, device=fg.device)[:, None] * slots[1] + gt_idx  # (B, A) instance id
            w_inst = self.group_weights(loss, key, fg, bs * slots[1])
            return fg, w_inst[key], w_inst[idx.long() * slots[1] + slots[0]]
        lvl = level_of_anchor(x.t_feats).expand_as(fg)
        w_lvl = self.group_weights(loss, lvl, fg, len(x.t_feats))
        return fg, w_lvl[lvl], w_lvl

    def group_weights(self, loss: Tensor, key: Tensor, fg: Tensor, n: int) -> Tensor:
        """``exp(-alpha * D_g / mean_g D_g)`` per group (instance or level).

        D_g is the mean teacher loss of the group's positive anchors; groups without positives get weight 1.
        """
        tot = loss.new_zeros(n).index_add(0, key[fg], loss[fg])
        cnt = loss.new_zeros(n).index_add(0, key[fg], torch.ones_like(loss[fg]))
        d = tot / cnt.clamp(min=1)
        mean = rank_share(d[cnt > 0].sum()) / rank_share((cnt > 0).sum().float()).clamp(min=1e-9)
        d = d / mean.clamp(min=1e-9)
        return torch.where(cnt > 0, torch.exp(-self.alpha * d), torch.ones_like(d))

    def forward(self, x: KDInputs) -> dict[str, Tensor]:
        """Instance-weighted feature imitation in boxes and logit KD at the instances' anchors."""
        fg, w_anchor, w = self.weights(x)
        idx, _, boxes = x.gt
        out = {}
        if self.w["feat"] > 0:
            vals = [w if self.mode == "instance" else w[i].expand(len(boxes)) for i in range(len(x.t_feats))]
            feat = box_region_imitation(self.adapt, x.s_feats, x.t_feats, x.strides, boxes, idx, vals)
            out["aid_feat"] = self.w["feat"] * feat
        if self.w["logit"] > 0:
            tau = self.temperature
            kl = binary_kl(x.s_head["scores"].float() / tau, x.t_head["scores"].float() / tau).sum(1) * tau**2
            n = rank_share(fg.sum().float()).clamp(min=1e-9)
            out["aid_logit"] = self.w["logit"] * (kl * w_anchor * fg).sum() / n
        return out
