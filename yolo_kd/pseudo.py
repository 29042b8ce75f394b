"""Teacher pseudo-labels for the unlabeled images of a batch, and the task loss split by label source.

The teacher already runs on every training batch; its decoded predictions on the unlabeled images (after the same
augmentation as the labeled ones) go through NMS and per-class confidence thresholds and become targets in the
student's class ids: boxes, and for a segment / pose / obb student taught by a teacher of its task the teacher's
masks, keypoints or rotated boxes (``pseudo_tasks``). The student's loss is computed separately on the labeled images
(ground truth) and on the unlabeled ones (pseudo-labels), ``det = det_labeled + pseudo_weight * det_unlabeled``, so
an unlabeled image is supervised only by what the teacher found on it, never by Ultralytics' "no label file =
background".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from yolo_kd import pseudo_tasks as pt
from yolo_kd.pseudo_tasks import TARGET_KEYS


@dataclass
class PseudoLabeler:
    """Pseudo-label settings and the teacher's output layout.

    Attributes:
        conf (float | list[float]): Confidence threshold, one or one per student class (``pseudo_conf``).
        iou (float): NMS IoU (``pseudo_iou``). max_det (int): Labels per image (``pseudo_max``).
        weight (float): The unlabeled images' loss weight (``pseudo_weight``).
        task (str): The student's task; overlap (bool): a seg student's ``overlap_mask`` (one index map per image).
        nc_t (int | None): Teacher classes (None: every channel after the box is a class, a detection teacher).
        kpt_shape (tuple | None): A pose teacher's keypoint layout (K, D).
    """

    conf: float | list[float] = 0.5
    iou: float = 0.7
    max_det: int = 100
    weight: float = 1.0
    task: str = "detect"
    overlap: bool = True
    nc_t: int | None = None
    kpt_shape: tuple[int, int] | None = None

    @classmethod
    def from_args(cls, a) -> PseudoLabeler | None:
        """Settings from trainer args (``pseudo_conf``, ``pseudo_iou``, ...); None without ``unlabeled=``."""
        if not getattr(a, "unlabeled", None):
            return None
        return cls(conf=a.pseudo_conf, iou=float(a.pseudo_iou), max_det=int(a.pseudo_max),
                   weight=float(a.pseudo_weight), overlap=bool(getattr(a, "overlap_mask", True)))  # fmt: skip

    @property
    def targets(self) -> tuple[str, ...]:
        """The batch keys with one row per instance for this task (``pseudo_tasks.target_keys``)."""
        return pt.target_keys(self.task, self.overlap)

    def thresholds(self, nc: int, device: torch.device) -> Tensor:
        """Per-student-class confidence thresholds."""
        c = self.conf if isinstance(self.conf, (list, tuple)) else [self.conf] * nc
        return torch.tensor([float(v) for v in c], device=device)

    def label(self, pred: Tensor | tuple, n_labeled: int, hw: tuple[int, int], nc_s: int, class_map: Tensor | None,
              end2end: bool = False) -> dict[str, Tensor]:  # fmt: skip
        """Targets (cls, normalised boxes, batch_idx, task targets) for images ``n_labeled:`` of ``pred``.

        Args:
            pred (Tensor | tuple): The teacher's decoded eval output, (B, 4 + nc_t + extra, anchors) or end-to-end
                (B, max_det, 6 + extra); a segment teacher's is (that, prototypes (B, nm, mh, mw)).
            n_labeled (int): Images before this index carry ground truth and get no pseudo-labels.
            hw (tuple[int, int]): Network input height and width in pixels (to normalise the boxes).
            nc_s (int): Student class count.
            class_map (Tensor | None): Student -> teacher class ids (-1: the teacher lacks it); None = same classes.
            end2end (bool): The teacher is an NMS-free (YOLO26) head.
        """
        from ultralytics.utils.nms import non_max_suppression

        proto = None
        if isinstance(pred, (tuple, list)):  # a segment teacher: (decoded, prototypes)
            pred, proto = pred[0], pred[1][0] if isinstance(pred[1], (tuple, list)) else pred[1]
        thr = self.thresholds(nc_s, pred.device)
        dets = non_max_suppression(pred[n_labeled:].float(), float(thr.min()), self.iou, max_det=self.max_det,
                                   nc=self.nc_t or 0, rotated=self.task == "obb", end2end=end2end)  # fmt: skip
        to_student = None
        if class_map is not None:  # teacher id -> student id, -1 for teacher classes the student does not have
            m = class_map.to(pred.device)
            nc_t = self.nc_t or (pred.shape[-1] - 4 if end2end else pred.shape[1] - 4)
            to_student = torch.full((max(nc_t, int(m.max()) + 1),), -1, device=pred.device, dtype=torch.long)
            keep = m >= 0
            to_student[m[keep]] = torch.arange(len(m), device=pred.device)[keep]
        out = {k: [] for k in self.targets + (("masks",) if self.task == "segment" else ())}
        for i, d in enumerate(dets):
            cls = d[:, 5].long()
            if to_student is not None:
                cls = to_student[cls.clamp(max=len(to_student) - 1)]
            ok = (cls >= 0) & (d[:, 4] >= thr[cls.clamp(min=0)])  # a student class, above its threshold
            d, cls = d[ok], cls[ok]
            if self.task == "segment":
                masks = pt.instance_masks(d, proto[n_labeled + i].float(), hw)
                order = pt.by_area(masks)
                d, cls, masks = d[order], cls[order], masks[order]
                out["masks"].append(pt.index_map(masks) if self.overlap else masks)
            if self.task == "pose":
                out["keypoints"].append(pt.keypoints(d, self.kpt_shape, hw))
            out["bboxes"].append(pt.rotated(d, hw) if self.task == "obb" else pt.xywh(d, hw))
            out["cls"].append(cls.float().view(-1, 1))
            out["batch_idx"].append(torch.full((len(d),), float(n_labeled + i), device=d.device))
        return {k: torch.cat(v) if v else self.empty(k, pred, proto) for k, v in out.items()}

    def empty(self, key: str, pred: Tensor, proto: Tensor | None) -> Tensor:
        """A zero-row target of ``key`` (a batch without unlabeled images)."""
        shape = {"bboxes": (0, 5 if self.task == "obb" else 4), "cls": (0, 1), "batch_idx": (0,)}.get(key)
        if key == "keypoints":
            shape = (0, *self.kpt_shape)
        elif key == "masks":
            return torch.zeros((0, *proto.shape[-2:]), dtype=torch.uint8, device=pred.device)
        return pred.new_zeros(shape)


def with_targets(batch: dict[str, Any], extra: dict[str, Tensor]) -> dict[str, Any]:
    """The batch with ``extra`` targets appended (same keys, same device; masks resized to the batch's)."""
    dev = batch["cls"].device
    out = {**batch, **{k: torch.cat([batch[k], v.to(dev, batch[k].dtype)]) for k, v in extra.items() if k != "masks"}}
    if "masks" in extra:
        out["masks"] = pt.append_masks(batch["masks"], extra["masks"])
    return out


def take(obj: Any, sl: slice, n: int) -> Any:
    """Slice every tensor whose first dimension is the batch (size ``n``) inside nested dicts, lists and tuples."""
    if torch.is_tensor(obj):
        return obj[sl] if obj.ndim and obj.shape[0] == n else obj
    if isinstance(obj, dict):
        return {k: take(v, sl, n) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(take(v, sl, n) for v in obj)
    return obj


def part(batch: dict[str, Any], lo: int, hi: int, keys: tuple[str, ...] = TARGET_KEYS) -> dict[str, Any]:
    """Images ``lo:hi`` of a training batch with their targets (``keys``: one row per instance; batch_idx from 0)."""
    keep = (batch["batch_idx"] >= lo) & (batch["batch_idx"] < hi)
    out = {k: v[lo:hi] if torch.is_tensor(v) and k not in keys else v for k, v in batch.items()}
    out.update({k: batch[k][keep] for k in keys if k in batch})
    out["batch_idx"] = out["batch_idx"] - lo
    return out


def split_loss(criterion, batch: dict, preds: Any, n_labeled: int, weight: float,
               keys: tuple[str, ...] = TARGET_KEYS) -> tuple[Tensor, dict, float]:  # fmt: skip
    """``det_labeled + weight * det_unlabeled`` (Ultralytics' loss x batch-size convention), items, pseudo share.

    Returns:
        (Tensor): The combined loss vector (the task's items, e.g. box, cls, dfl), summed over images.
        (dict[str, Tensor]): Its named per-image items for logging (box_loss, cls_loss, dfl_loss).
        (float): The unlabeled images' share of the combined detection loss.
    """
    n = batch["img"].shape[0]
    det_l, items_l = criterion(part(batch, 0, n_labeled, keys), take(preds, slice(0, n_labeled), n))
    det_u, items_u = criterion(part(batch, n_labeled, n, keys), take(preds, slice(n_labeled, n), n))
    det = det_l + weight * det_u
    share = float((weight * det_u.sum()).detach() / det.sum().detach().clamp(min=1e-12))
    items = {k: (items_l[k] * n_labeled + weight * items_u[k] * (n - n_labeled)) / n for k in items_l}
    return det, items, share
