"""BCKD: binary-classification and IoU-based localisation distillation for dense detectors (ICCV 2023)."""

from __future__ import annotations

from torch import Tensor

from yolo_kd.losses.base import DistillLoss, KDInputs
from yolo_kd.losses.functional import binary_distill, decode_boxes, giou_loss, rank_share
from yolo_kd.losses.registry import register


@register("bckd")
class BCKD(DistillLoss):
    """Binary-classification KD and IoU-based localisation KD (BCKD, Yang et al., ICCV 2023, arXiv 2308.14286).

    Paper: *Bridging Cross-task Protocol Inconsistency for Distillation in Dense Object Detection*.
    Classification (the paper's binary-classification distillation): every class map is a binary problem,
    ``L_cls = sum_{a,c} BCE(z^S_ac, p^T_ac) |p^T_ac - p^S_ac|^beta / N_pos``, p = sigmoid; localisation (the paper's
    IoU-based distillation, head-agnostic): ``L_box = sum_a w_a (1 - GIoU(b^S_a, b^T_a)) / N_pos`` over every anchor,
    ``w_a = max_c |p^T_ac - p^S_ac|`` (detached), boxes decoded from each head (DFL expectation or YOLO26's direct
    ltrb), so it works for ``reg_max = 1``. ``N_pos`` = the student's task-aligned positives (global under DDP).
    ``L = weight (cls_weight L_cls + box_weight L_box)``; cls_weight, box_weight and beta are the authors' GFL config
    (1.0, 4.0, 1).

    Deviations: ``weight`` = 20 (ours) rescales the paper's terms to Ultralytics' detection loss. At the paper's
    weights (``bckd_weight=1``) the terms are inert here: 0.01-0.07x the detection loss's gradient on the student's
    backbone and neck (``yolo-kd inspect``, cpu-small teacher, fresh and trained yolov8n), against 2.3x for builtin;
    x20 brings them to ~1x late in training. Set by that gradient share, not tuned on mAP. When student and teacher
    are both end-to-end (YOLO26), the same two terms are also applied to the one-to-one (NMS-free) branches and added
    (ours: normalised by the same one-to-many positives ``N_pos``; that branch's inputs are detached by Ultralytics,
    so its terms train the one-to-one head only, as its own detection loss does).
    """

    requires = frozenset({"box_branch", "scores"})
    names = ("bckd_cls", "bckd_box")

    def __init__(
        self,
        s_channels: list[int],
        t_channels: list[int],
        *,
        weight: float = 20.0,
        cls_weight: float = 1.0,
        box_weight: float = 4.0,
        beta: float = 1.0,
    ) -> None:
        """Store the weights and the modulating exponent."""
        super().__init__(s_channels, t_channels)
        self.cls_weight, self.box_weight, self.beta = weight * cls_weight, weight * box_weight, beta

    def terms(
        self, s_head: dict, t_head: dict, n_pos: Tensor, anchors: Tensor, stride: Tensor
    ) -> tuple[Tensor, Tensor]:
        """(L_cls, L_box) of one branch, unweighted."""
        s, t = s_head["scores"].float(), t_head["scores"].float()  # (B, nc, A)
        cls = binary_distill(s, t, self.beta).sum() / n_pos
        w = (t.sigmoid() - s.sigmoid()).abs().amax(1).detach()  # (B, A)
        b_s = decode_boxes(s_head["boxes"], anchors, stride)  # (B, A, 4) pixels
        b_t = decode_boxes(t_head["boxes"].detach(), anchors, stride)
        return cls, (w * giou_loss(b_s, b_t)).sum() / n_pos

    def forward(self, x: KDInputs) -> dict[str, Tensor]:
        """Binary-classification and IoU-based localisation terms, normalised by the student's positives."""
        fg, _, _, anchors, stride = x.assign("student")
        n_pos = rank_share(fg.sum().float()).clamp(min=1.0)
        cls, box = self.terms(x.s_head, x.t_head, n_pos, anchors, stride)
        if x.s_head_o2o is not None and x.t_head_o2o is not None:  # YOLO26 pair: the NMS-free branch as well
            c2, b2 = self.terms(x.s_head_o2o, x.t_head_o2o, n_pos, anchors, stride)
            cls, box = cls + c2, box + b2
        return {"bckd_cls": self.cls_weight * cls, "bckd_box": self.box_weight * box}
