"""Teacher pseudo-labels for the unlabeled images of a batch, and the detection loss split by label source.

The teacher already runs on every training batch; its decoded predictions on the unlabeled images (after the same
augmentation as the labeled ones) go through NMS and per-class confidence thresholds and become targets in the
student's class ids. The student's detection loss is computed separately on the labeled images (ground truth) and
on the unlabeled ones (pseudo-labels), ``det = det_labeled + pseudo_weight * det_unlabeled``, so an unlabeled image
is supervised only by what the teacher found on it, never by Ultralytics' "no label file = background".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

TARGET_KEYS = ("cls", "bboxes", "batch_idx")


@dataclass
class PseudoLabeler:
    """Pseudo-label settings: ``conf`` (one or one per student class), NMS ``iou``, ``max_det``, loss ``weight``."""

    conf: float | list[float] = 0.5
    iou: float = 0.7
    max_det: int = 100
    weight: float = 1.0

    @classmethod
    def from_args(cls, a) -> PseudoLabeler | None:
        """Settings from trainer args (``pseudo_conf``, ``pseudo_iou``, ...); None without ``unlabeled=``."""
        if not getattr(a, "unlabeled", None):
            return None
        return cls(
            conf=a.pseudo_conf, iou=float(a.pseudo_iou), max_det=int(a.pseudo_max), weight=float(a.pseudo_weight)
        )

    def thresholds(self, nc: int, device: torch.device) -> Tensor:
        """Per-student-class confidence thresholds."""
        c = self.conf if isinstance(self.conf, (list, tuple)) else [self.conf] * nc
        return torch.tensor([float(v) for v in c], device=device)

    def label(self, pred: Tensor, n_labeled: int, hw: tuple[int, int], nc_s: int, class_map: Tensor | None,
              end2end: bool = False) -> dict[str, Tensor]:  # fmt: skip
        """Targets (cls, normalised xywh bboxes, batch_idx) for images ``n_labeled:`` of ``pred``.

        Args:
            pred (Tensor): The teacher's decoded eval output, (B, 4 + nc_t, anchors), or (B, max_det, 6) end-to-end.
            n_labeled (int): Images before this index carry ground truth and get no pseudo-labels.
            hw (tuple[int, int]): Network input height and width in pixels (to normalise the boxes).
            nc_s (int): Student class count.
            class_map (Tensor | None): Student -> teacher class ids (-1: the teacher lacks it); None = same classes.
            end2end (bool): The teacher is an NMS-free (YOLO26) head.
        """
        from ultralytics.utils.nms import non_max_suppression

        thr = self.thresholds(nc_s, pred.device)
        dets = non_max_suppression(pred[n_labeled:].float(), float(thr.min()), self.iou, max_det=self.max_det,
                                   end2end=end2end)  # fmt: skip
        to_student = None
        if class_map is not None:  # teacher id -> student id, -1 for teacher classes the student does not have
            m = class_map.to(pred.device)
            nc_t = pred.shape[-1] - 4 if end2end else pred.shape[1] - 4
            to_student = torch.full((max(nc_t, int(m.max()) + 1),), -1, device=pred.device, dtype=torch.long)
            keep = m >= 0
            to_student[m[keep]] = torch.arange(len(m), device=pred.device)[keep]
        h, w = hw
        out = {k: [] for k in TARGET_KEYS}
        for i, d in enumerate(dets):
            cls = d[:, 5].long()
            if to_student is not None:
                cls = to_student[cls.clamp(max=len(to_student) - 1)]
            ok = (cls >= 0) & (d[:, 4] >= thr[cls.clamp(min=0)])  # a student class, above its threshold
            d, cls = d[ok], cls[ok]
            xy = (d[:, :2] + d[:, 2:4]) / 2
            wh = d[:, 2:4] - d[:, :2]
            scale = torch.tensor([w, h], device=d.device, dtype=d.dtype)
            out["bboxes"].append(torch.cat([xy / scale, wh / scale], 1))
            out["cls"].append(cls.float().view(-1, 1))
            out["batch_idx"].append(torch.full((len(d),), float(n_labeled + i), device=d.device))
        return {k: torch.cat(v) if v else pred.new_zeros((0, 4) if k == "bboxes" else (0, 1) if k == "cls" else 0)
                for k, v in out.items()}  # fmt: skip


def with_targets(batch: dict[str, Any], extra: dict[str, Tensor]) -> dict[str, Any]:
    """The batch with ``extra`` targets appended (same keys, same device)."""
    dev = batch["cls"].device
    return {**batch, **{k: torch.cat([batch[k], extra[k].to(dev, batch[k].dtype)]) for k in TARGET_KEYS}}


def take(obj: Any, sl: slice, n: int) -> Any:
    """Slice every tensor whose first dimension is the batch (size ``n``) inside nested dicts, lists and tuples."""
    if torch.is_tensor(obj):
        return obj[sl] if obj.ndim and obj.shape[0] == n else obj
    if isinstance(obj, dict):
        return {k: take(v, sl, n) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(take(v, sl, n) for v in obj)
    return obj


def part(batch: dict[str, Any], lo: int, hi: int) -> dict[str, Any]:
    """Images ``lo:hi`` of a training batch with their targets (batch_idx renumbered from 0)."""
    keep = (batch["batch_idx"] >= lo) & (batch["batch_idx"] < hi)
    out = {k: v[lo:hi] if torch.is_tensor(v) and k not in TARGET_KEYS else v for k, v in batch.items()}
    out.update({k: batch[k][keep] for k in TARGET_KEYS})
    out["batch_idx"] = out["batch_idx"] - lo
    return out


def split_loss(criterion, batch: dict, preds: Any, n_labeled: int, weight: float) -> tuple[Tensor, dict, float]:
    """``det_labeled + weight * det_unlabeled`` (Ultralytics' loss x batch-size convention), items, pseudo share.

    Returns:
        (Tensor): The combined detection loss vector (box, cls, dfl), summed over images.
        (dict[str, Tensor]): Its named per-image items for logging (box_loss, cls_loss, dfl_loss).
        (float): The unlabeled images' share of the combined detection loss.
    """
    n = batch["img"].shape[0]
    det_l, items_l = criterion(part(batch, 0, n_labeled), take(preds, slice(0, n_labeled), n))
    det_u, items_u = criterion(part(batch, n_labeled, n), take(preds, slice(n_labeled, n), n))
    det = det_l + weight * det_u
    share = float((weight * det_u.sum()).detach() / det.sum().detach().clamp(min=1e-12))
    items = {k: (items_l[k] * n_labeled + weight * items_u[k] * (n - n_labeled)) / n for k in items_l}
    return det, items, share
