"""Keypoint distillation for YOLO-pose regression heads: the teacher's keypoints and visibilities as soft targets."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from yolo_kd.losses.base import DistillLoss, KDInputs
from yolo_kd.losses.functional import rank_share
from yolo_kd.losses.registry import register


def decode(raw: Tensor, head: nn.Module, anchors: Tensor, stride: Tensor) -> Tensor:
    """(B, K*D, A) raw keypoints -> (B, A, K, 2) input pixels, as the head's own ``kpts_decode`` maps them.

    YOLOv8/11 ``Pose``: ``(r * 2 + anchor - 0.5) * stride``; YOLO26 ``Pose26``: ``(r + anchor) * stride``.
    """
    k, d = head.kpt_shape
    xy = raw.view(raw.shape[0], k, d, -1)[:, :, :2].permute(0, 3, 1, 2)  # (B, A, K, 2)
    gain, off = (1.0, 0.0) if type(head).__name__ == "Pose26" else (2.0, -0.5)
    return (xy * gain + anchors[None, :, None] + off) * stride[None, :, None]


def oks_sigmas(k: int, device: torch.device) -> Tensor:
    """Ultralytics' keypoint sigmas: COCO's OKS sigmas for 17 keypoints, else 1/K each."""
    from ultralytics.utils.metrics import OKS_SIGMA

    return torch.from_numpy(OKS_SIGMA).float().to(device) if k == 17 else torch.full((k,), 1.0 / k, device=device)


@register("kptkd")
class KeypointKD(DistillLoss):
    """Keypoint distillation for pose students taught by a pose teacher (a labelled adaptation).

    Ultralytics' YOLO-pose keypoint loss (Maji et al., CVPR-W 2022: an OKS-shaped location error, BCE on
    visibility) with the teacher's decoded keypoints as targets instead of the labels, every keypoint weighted by the
    teacher's visibility probability ``v^T`` rather than a 0/1 label mask: DWPose (Yang et al., ICCV-W 2023) found
    that distilling visible and invisible keypoints alike helps, so none is dropped, the uncertain ones count less.
    At the teacher's task-aligned positives ``p`` (object box area ``s_p``, keypoint sigmas ``sigma_k``):

        e_pk = |k^S_pk - k^T_pk|^2 / ((2 sigma_k)^2 * (s_p + 1e-9) * 2)
        L_pose = pose_weight * mean_p [ sum_k v^T_pk (1 - exp(-e_pk)) / sum_k v^T_pk ]
        L_kobj = kobj_weight * mean_pk BCE(visibility logit^S_pk, v^T_pk)

    Defaults are Ultralytics' pose (12.0) and kobj (1.0) gains: the teacher's keypoints pull as much as the labels'.
    Keypoints without a visibility channel (``kpt_shape [K, 2]``) weigh 1 and have no ``kobj`` term (it is 0).
    With method= left out, a pose student that starts from weights and is taught by a pose teacher trains with this
    loss alone (``cfg.PRETRAINED_METHODS``, T13).
    """

    requires = frozenset({"box_branch", "detect_modules"})
    names = ("kptkd_pose", "kptkd_kobj")
    task = "pose"

    def __init__(
        self, s_channels: list[int], t_channels: list[int], *, pose_weight: float = 12.0, kobj_weight: float = 1.0
    ) -> None:
        """Store the two weights."""
        super().__init__(s_channels, t_channels)
        self.pose_weight, self.kobj_weight = pose_weight, kobj_weight

    def forward(self, x: KDInputs) -> dict[str, Tensor]:
        """OKS-shaped keypoint error and visibility BCE against the teacher, per positive."""
        fg, _, boxes, anchors, stride = x.assign("teacher")
        k, d = x.s_detect.kpt_shape
        s_raw, t_raw = x.s_head["kpts"].float(), x.t_head["kpts"].float().detach()
        ks = decode(s_raw, x.s_detect, anchors, stride)[fg]  # (P, K, 2)
        kt = decode(t_raw, x.teacher.detect, anchors, stride)[fg]
        b = boxes[fg].float()
        area = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[:, None]  # (P, 1)
        sig = oks_sigmas(k, ks.device)
        e = ((ks - kt) ** 2).sum(-1) / ((2 * sig) ** 2 * (area + 1e-9) * 2)
        n = rank_share(fg.sum().float()).clamp(min=1.0)
        if d == 3:
            s_vis = s_raw.view(s_raw.shape[0], k, d, -1)[:, :, 2].permute(0, 2, 1)[fg]  # (P, K) logits
            v = t_raw.view(t_raw.shape[0], k, d, -1)[:, :, 2].permute(0, 2, 1)[fg].sigmoid()
            kobj = F.binary_cross_entropy_with_logits(s_vis, v, reduction="none").mean(1).sum() / n
        else:
            v, kobj = torch.ones_like(e), s_raw.sum() * 0.0
        pose = ((v * (1 - torch.exp(-e))).sum(1) / v.sum(1).clamp(min=1e-9)).sum() / n
        return {"kptkd_pose": self.pose_weight * pose, "kptkd_kobj": self.kobj_weight * kobj}
