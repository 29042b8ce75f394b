"""Mask distillation for YOLACT-style segmentation heads: the teacher's assembled instance masks as soft targets."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from yolo_kd.losses.base import DistillLoss, KDInputs
from yolo_kd.losses.functional import rank_share
from yolo_kd.losses.registry import register


def assembled(coef: Tensor, proto: Tensor) -> Tensor:
    """Mask logits ``coef . proto`` (YOLACT, Bolya et al., ICCV 2019): (P, nm) x (P, nm, H, W) -> (P, H, W)."""
    return torch.einsum("pm,pmhw->phw", coef, proto)


def box_crop(boxes: Tensor, h: int, w: int) -> Tensor:
    """(P, H, W) 1/0 masks of the pixels whose centres lie inside each xyxy box (proto pixels), as Ultralytics crops."""
    x = torch.arange(w, device=boxes.device, dtype=boxes.dtype)[None, None, :]
    y = torch.arange(h, device=boxes.device, dtype=boxes.dtype)[None, :, None]
    x1, y1, x2, y2 = (boxes[:, i, None, None] for i in range(4))
    return ((x >= x1) & (x < x2) & (y >= y1) & (y < y2)).to(boxes.dtype)


@register("maskkd")
class MaskKD(DistillLoss):
    """Instance-mask distillation for seg students taught by a seg teacher (a labelled adaptation, no single paper).

    YOLO-seg heads predict each instance's mask as ``sigmoid(c . P)``: mask coefficients ``c`` at the anchor times the
    image's prototypes ``P`` (YOLACT). Response distillation (Hinton et al., 2015) in the dense per-pixel form used
    for segmentation (Liu et al., CVPR 2019, "Structured KD for semantic segmentation": pixel-wise KL) is applied to
    these assembled masks, in the form of Ultralytics' own mask loss with the teacher's mask as the target:
    at the teacher's task-aligned positives ``p`` (object box ``B_p`` in proto pixels, area ``|B_p|``)

        L = weight * sum_p [ sum_{ij in B_p} BCE(c^S_p . P^S_ij, sigmoid(c^T_p . P^T_ij)) / |B_p| ] / N_pos

    Masks are compared after assembly, so the two heads may have different prototype counts. The teacher's masks
    are targets (no gradient). ``weight=7.5`` is Ultralytics' box gain, which its mask loss also uses: the teacher's
    mask pulls as much as the label's. Prototypes at another resolution are resized to the student's (bilinear).
    With method= left out, a seg student that starts from weights and is taught by a seg teacher trains with this
    loss alone (``cfg.PRETRAINED_METHODS``, T11).
    """

    requires = frozenset({"box_branch"})
    names = ("maskkd",)
    task = "segment"

    def __init__(self, s_channels: list[int], t_channels: list[int], *, weight: float = 7.5) -> None:
        """Store the weight."""
        super().__init__(s_channels, t_channels)
        self.weight = weight

    def forward(self, x: KDInputs) -> dict[str, Tensor]:
        """Cropped, area-normalised BCE of the student's mask logits against the teacher's masks, per positive."""
        fg, _, boxes, _, _ = x.assign("teacher")
        ps, pt = x.s_head["proto"].float(), x.t_head["proto"].float().detach()
        if pt.shape[-2:] != ps.shape[-2:]:
            pt = F.interpolate(pt, size=ps.shape[-2:], mode="bilinear", align_corners=False)
        b_idx = fg.nonzero()[:, 0]
        cs = x.s_head["mask_coefficient"].float().permute(0, 2, 1)[fg]  # (P, nm_s)
        ct = x.t_head["mask_coefficient"].float().detach().permute(0, 2, 1)[fg]
        h, w = ps.shape[-2:]
        scale = boxes.new_tensor([w, h, w, h]) / boxes.new_tensor(x.batch["img"].shape[-2:]).flip(0).repeat(2)
        crop = box_crop(boxes[fg].float() * scale.float(), h, w)  # (P, h, w)
        target = assembled(ct, pt[b_idx]).sigmoid()
        bce = F.binary_cross_entropy_with_logits(assembled(cs, ps[b_idx]), target, reduction="none")
        per = (bce * crop).sum((1, 2)) / crop.sum((1, 2)).clamp(min=1.0)
        n = rank_share(fg.sum().float()).clamp(min=1.0)
        return {"maskkd": self.weight * per.sum() / n}
