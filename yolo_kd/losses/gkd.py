"""GKD: gradient-guided feature imitation (Lan & Tian, WACV 2024, arXiv 2303.04240)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from yolo_kd.errors import KDError
from yolo_kd.losses.base import Assignment, DistillLoss, KDInputs, adapters, batch_targets
from yolo_kd.losses.functional import cells_in_boxes, gt_table, max_per_image, rank_share
from yolo_kd.losses.registry import register

MAPS = ("cell", "pooled", "score")


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
    lands on objects (P3 in-box mass ~0.8 on a trained teacher, against ~0.05 for the pooled map; issue 15).

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


@register("gkd")
class GKD(DistillLoss):
    """Gradient-guided feature imitation (GKD, Lan & Tian, WACV 2024, arXiv 2303.04240), our adaptation.

    The paper's loss (Eq. 4 as its released code reads it) is ``beta * mean |M_T - M_S|`` between the teacher's
    and the student's Grad-CAM maps of their detection losses; that is ``cam_weight`` here, and ``gkdpaper``
    (below) runs it alone with the paper's map. ``gkd`` instead uses the teacher's map to weight feature imitation
    by adapted student maps (ours):
    ``L = weight * sum_l sum_ij M_l (F^T_l - phi_l(F^S_l))^2 / (C_l sum M_l)`` (+ ``cam_weight`` x the paper's term).

    Maps (``map=``): ``cell`` (default, ours) = per-cell gradient x activation ``|sum_k g_k A_k|`` / per-image max;
    ``pooled`` = the paper's Grad-CAM ``minmax(ReLU(sum_k w_k A_k))``, kept for reproduction; ``score`` = the same
    Grad-CAM of a score target instead of the loss (ours: the teacher's logit of the assigned class summed over its
    positive anchors, ``score_target``), whose channel weights point along object evidence. Measured on a trained
    teacher (issue 15) the pooled map is not object-selective on P3 (~5 % of its mass in boxes, chance level; 35 % on
    letterbox padding) and is all zero on 20-38 % of P5 maps; the cell map puts ~80 % in boxes. ``gate=True`` also
    zeroes the map off the (label or pseudo) boxes. A degenerate map (all zero or constant) never drops its level
    silently: it falls back to uniform weights (plain imitation) and is counted in ``degenerate`` and the log.

    Gradients: the teacher's detection loss on the actual augmented batch, for the whole batch at once, by
    re-running only its frozen Detect head (eval, FP32) on detached neck maps (the released code re-reads each image
    from disk, un-augmented, and runs two full detectors per image); ``targets='teacher'`` uses the teacher's
    detections (score > 0.3, top 10) as pseudo-GT as the code does. In the released code both maps are NumPy
    constants (no gradient reaches the student) and every config copies the teacher's neck and head into the student
    (``init_student``); here the student's map is differentiable through its activations (the Grad-CAM weights are
    constants, as in Grad-CAM), and there is no weight copying (teacher and student widths differ).

    Defaults (ours): Ultralytics' projector (``adapter='mlp'``) as ``builtin``, whose normalisation this term shares;
    ``gate=True`` and ``weight`` 12, chosen for ``gkd+bmfi`` by a rule fixed before the runs (best mean paired gain
    over builtin on tuning seeds 4-7 among {ungated, gated} x {6, 12}; docs/benchmarks.md section C, cpu-small):
    ungated the cell map still spends ~20 % of its mass off the boxes, and at weight 6 gkd's late gradient share is
    ~0.55x builtin's. On the benchmark's seeds 0-3 that lifted gkd+bmfi by +4.0 mAP50-95 over weight 6 ungated (the
    defaults of sections 0, 0c, H1 and H2). Weight 24 and 48 (section D, same rule) did not carry over to seeds 0-3
    (gkd+bmfi -0.1, gkd alone -1.7 at 48), so 12 stays. ``map='score'`` (section D3) is object-selective on P3 (0.45
    of its mass in boxes at a chance of 0.07; cell 0.77, pooled 0.07) but lost to the cell map inside the gate
    (gkd+bmfi -0.5 [-3.2, +2.3] on tuning seeds 8-11 of that footing), so ``cell`` stays. ``cam_weight`` 0.6 in
    ``gkdpaper`` = the released one-stage beta 0.1 x ~6 (mmdet's summed loss is ~6x smaller than Ultralytics').
    """

    axis_aligned = True
    uses_head = False
    needs_grads = True
    prefix = "gkd"

    def __init__(
        self,
        s_channels: list[int],
        t_channels: list[int],
        *,
        weight: float = 12.0,
        cam_weight: float = 0.0,
        map: str = "cell",
        gate: bool = True,
        source: str = "teacher",
        targets: str = "labels",
        conf: float = 0.3,
        max_det: int = 10,
        adapter: str = "mlp",
    ) -> None:
        """Build adapters and check options."""
        super().__init__(s_channels, t_channels)
        if source not in {"teacher", "student"} or targets not in {"labels", "teacher"}:
            raise KDError(f"gkd: source must be teacher|student and targets labels|teacher, got {source}, {targets}")
        if map not in MAPS:
            raise KDError(f"gkd: map must be one of {', '.join(MAPS)}, got {map}")
        if map == "score" and targets == "teacher":
            raise KDError("gkd: map=score reads the teacher's assignment to the labels; use targets=labels with it")
        self.weight, self.cam_weight, self.source, self.targets = weight, cam_weight, source, targets
        self.map, self.gate, self.conf, self.max_det = map, bool(gate), conf, max_det
        self.adapt = adapters(s_channels, t_channels, adapter) if weight > 0 else None
        p = self.prefix
        self.names = tuple(n for n, w in ((p, weight), (f"{p}_cam", cam_weight)) if w > 0) or (p,)
        self.degenerate = [0] * len(s_channels)  # images whose map fell back to uniform, per level

    def make_map(self, feat: Tensor, grad: Tensor) -> Tensor:
        """The configured (B, H, W) map of one level (``score`` is a Grad-CAM of another target)."""
        return (cell_map if self.map == "cell" else grad_cam)(feat, grad)

    def fallback(self, maps: list[Tensor]) -> list[Tensor]:
        """Uniform weights for images whose map is degenerate; count them per level and say so once."""
        out = []
        for i, m in enumerate(maps):
            bad = degenerate(m)
            if bad.any():
                if not any(self.degenerate):
                    from ultralytics.utils import LOGGER

                    LOGGER.warning(f"{self.prefix}: degenerate (all-zero or constant) map on level {i}; uniform "
                                   "weights used there (counted in .degenerate)")  # fmt: skip
                self.degenerate[i] += int(bad.sum())
                m = torch.where(bad[:, None, None], torch.ones_like(m), m)
            out.append(m)
        return out

    def targets_batch(self, x: KDInputs) -> dict:
        """The batch whose boxes the teacher's loss (and the gate) uses: labels or teacher pseudo-labels."""
        if self.targets == "teacher":
            return {**x.batch, **pseudo_targets(x.t_pred, x.batch["img"].shape[-2:], self.conf, self.max_det)}
        return x.batch

    def teacher_maps(self, x: KDInputs) -> list[Tensor]:
        """Maps of the teacher's detection loss (or score target) w.r.t. its neck maps, (B, H, W) per level."""
        with torch.enable_grad():
            feats = [f.detach().float().requires_grad_(True) for f in x.t_feats]
            if self.map == "score":
                loss = score_target(x.teacher_logits(feats), x.assign("teacher"), x.batch)
            else:
                loss = x.teacher_task_loss(feats, self.targets_batch(x), teacher_classes=self.targets == "teacher")
            grads = torch.autograd.grad(loss, feats, allow_unused=True)
        return [self.make_map(f.detach(), torch.zeros_like(f) if g is None else g) for f, g in zip(feats, grads)]

    def student_maps(self, x: KDInputs) -> list[Tensor]:
        """Maps of the student's detection loss w.r.t. its neck maps (differentiable through activations)."""
        grads = torch.autograd.grad(x.task_loss, x.s_feats, retain_graph=True, allow_unused=True)
        return [self.make_map(f.float(), torch.zeros_like(f) if g is None else g.float()) for f, g in
                zip(x.s_feats, grads)]  # fmt: skip

    def weights(self, x: KDInputs, maps: list[Tensor]) -> list[Tensor]:
        """Imitation weights: degenerate maps made uniform, then gated to the boxes when ``gate``."""
        maps = self.fallback([m.detach() for m in maps])
        if self.gate:
            idx, _, boxes = batch_targets(self.targets_batch(x))  # labels or teacher pseudo-labels
            maps = box_gate(maps, boxes, idx, x.strides)
        return maps

    def spatial_weights(self, x: KDInputs) -> dict[str, list[Tensor]]:
        """The teacher maps (as the imitation uses them, or as the CAM term compares them)."""
        m_t = self.teacher_maps(x)
        return {self.prefix: self.weights(x, m_t) if self.weight > 0 else m_t}

    def forward(self, x: KDInputs) -> dict[str, Tensor]:
        """Map-weighted imitation and/or the paper's CAM alignment."""
        p = self.prefix
        need_t, need_s = (
            self.source == "teacher" or self.cam_weight > 0,
            self.source == "student" or self.cam_weight > 0,
        )
        m_t = self.teacher_maps(x) if need_t else None
        m_s = self.student_maps(x) if need_s else None
        out = {}
        if self.weight > 0:
            w = self.weights(x, m_t if self.source == "teacher" else m_s)
            loss = sum(weighted_imitation(a(s.float()), t.float(), m) for a, s, t, m in
                       zip(self.adapt, x.s_feats, x.t_feats, w))  # fmt: skip
            out[p] = self.weight * loss
        if self.cam_weight > 0:
            out[f"{p}_cam"] = self.cam_weight * sum((mt - ms).abs().mean() for mt, ms in zip(m_t, m_s))
        return out or {p: x.s_feats[0].sum() * 0}


@register("gkdpaper")
class GKDPaper(GKD):
    """GKD as the paper's loss: ``beta * mean |M_T - M_S|`` of Grad-CAM maps (Lan & Tian, WACV 2024), for reproduction.

    Same class as ``gkd`` with the paper's defaults: no feature imitation (``weight`` 0), the pooled Grad-CAM map,
    ``cam_weight`` 0.6 (released one-stage beta 0.1 x ~6 for Ultralytics' per-image loss scale). Differences from
    the released code: the student's map is differentiable (there it is a NumPy constant, so the term trains
    nothing), gradients come from the augmented batch, and the student is not initialised from the teacher.
    """

    prefix = "gkdpaper"

    def __init__(
        self, s_channels: list[int], t_channels: list[int], *, cam_weight: float = 0.6, map: str = "pooled"
    ) -> None:
        """The paper's term alone (imitation weight 0); ``gkd`` with ``gkd_cam_weight=`` combines both."""
        super().__init__(s_channels, t_channels, weight=0.0, cam_weight=cam_weight, map=map)
