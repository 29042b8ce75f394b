"""Pseudo-label targets for segment, pose and obb students: the teacher's masks, keypoints and rotated boxes.

After NMS (``PseudoLabeler.label``) a detection row is ``x1, y1, x2, y2, conf, cls, extra...`` in input pixels (obb:
``x, y, w, h, conf, cls, angle``). These functions turn a row's extra columns into the targets Ultralytics' task
dataset gives an augmented image, in the same layout, so the task's own loss takes them unchanged:

- pose: ``keypoints`` (n, K, D), xy normalised by the input size; with a visibility column (D = 3) a keypoint is
  visible (1) where the teacher's keypoint confidence is >= 0.5 and the point lies inside the input, else 0, as the
  dataset marks points that augmentation moved out of the image (Ultralytics' pose loss skips visibility 0);
- obb: ``bboxes`` (n, 5): xywh normalised, the angle regularised to [0, pi/2) as the dataset's corners give it;
- segment: the teacher's binary masks at prototype resolution (Ultralytics' ``process_mask``: coefficients times
  prototypes, > 0, cropped to the box), instances ordered by mask area, largest first, and with ``overlap_mask``
  (Ultralytics' default) drawn into one index map per image in that order, a smaller instance over a larger one, as
  ``polygons2masks_overlap`` draws labels; without it, one mask per instance.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

TARGET_KEYS = ("cls", "bboxes", "batch_idx")  # per-instance targets of every task
VISIBLE = 0.5  # a teacher keypoint confidence from which the pseudo keypoint counts as visible


def target_keys(task: str, overlap: bool = True) -> tuple[str, ...]:
    """The batch keys holding one row per instance: a pose set adds ``keypoints``, a seg set without overlap ``masks``.

    With ``overlap_mask`` a seg batch's ``masks`` has one index map per image and is sliced by image instead.
    """
    extra = {"pose": ("keypoints",), "segment": () if overlap else ("masks",)}.get(task, ())
    return (*TARGET_KEYS, *extra)


def xywh(d: Tensor, hw: tuple[int, int]) -> Tensor:
    """(n, 4) normalised xywh boxes of NMS rows ``x1, y1, x2, y2, ...``."""
    h, w = hw
    scale = d.new_tensor([w, h, w, h])
    return torch.cat([(d[:, :2] + d[:, 2:4]) / 2, d[:, 2:4] - d[:, :2]], 1) / scale


def rotated(d: Tensor, hw: tuple[int, int]) -> Tensor:
    """(n, 5) normalised xywhr boxes of rotated NMS rows ``x, y, w, h, conf, cls, angle`` (angle in [0, pi/2))."""
    from ultralytics.utils.ops import regularize_rboxes

    h, w = hw
    r = regularize_rboxes(torch.cat([d[:, :4], d[:, -1:]], 1))
    return r / r.new_tensor([w, h, w, h, 1.0])


def keypoints(d: Tensor, kpt_shape: tuple[int, int], hw: tuple[int, int]) -> Tensor:
    """(n, K, D) normalised keypoints of pose NMS rows; visibility 1/0 from the teacher's confidence when D = 3."""
    k, dim = kpt_shape
    h, w = hw
    kp = d[:, 6 : 6 + k * dim].reshape(-1, k, dim).clone()
    inside = (kp[..., 0] >= 0) & (kp[..., 0] < w) & (kp[..., 1] >= 0) & (kp[..., 1] < h)
    if dim == 3:
        kp[..., 2] = ((kp[..., 2] >= VISIBLE) & inside).to(kp.dtype)
    kp[..., 0] /= w
    kp[..., 1] /= h
    return kp


def instance_masks(d: Tensor, proto: Tensor, hw: tuple[int, int]) -> Tensor:
    """(n, mh, mw) uint8 masks of seg NMS rows from one image's prototypes (nm, mh, mw), as Ultralytics predicts."""
    from ultralytics.utils.ops import process_mask

    nm = proto.shape[0]
    return process_mask(proto, d[:, 6 : 6 + nm], d[:, :4], hw)


def by_area(masks: Tensor) -> Tensor:
    """Instance order for an overlap map: mask area, largest first (ties keep the NMS order)."""
    return torch.sort(masks.flatten(1).sum(1), descending=True, stable=True).indices


def index_map(masks: Tensor) -> Tensor:
    """(1, mh, mw) map of instance numbers 1..n (0: background); where masks overlap the later one wins."""
    n = masks.shape[0]
    if n == 0:
        return masks.new_zeros((1, *masks.shape[1:]))
    ids = torch.arange(1, n + 1, device=masks.device).view(-1, 1, 1) * masks.long()
    return ids.amax(0, keepdim=True).to(torch.uint8 if n <= 255 else torch.int32)


def append_masks(old: Tensor, new: Tensor) -> Tensor:
    """Labeled ``masks`` then pseudo ones, resized (nearest) to the labeled size, in a dtype that holds both."""
    dtype = torch.promote_types(old.dtype, new.dtype)
    if new.shape[-2:] != old.shape[-2:]:
        new = F.interpolate(new[None].float(), size=old.shape[-2:], mode="nearest")[0]
    return torch.cat([old.to(dtype), new.to(old.device, dtype)])
