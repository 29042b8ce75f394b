"""GKD: gradient-guided feature imitation (Lan & Tian, WACV 2024, arXiv 2303.04240)."""

from __future__ import annotations

import torch
from torch import Tensor

from yolo_kd.errors import KDError
from yolo_kd.losses.base import DistillLoss, KDInputs, adapters, batch_targets
from yolo_kd.losses.gradmaps import (
    box_gate,
    cell_map,
    grad_cam,
    pseudo_targets,
    score_target,
    uniform_if_degenerate,
    weighted_imitation,
)
from yolo_kd.losses.registry import register

MAPS = ("cell", "pooled", "score")


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
    positive anchors, ``score_target``), whose channel weights point along object evidence (measured selectivity:
    ``gradmaps.cell_map``). ``gate=True`` also zeroes the map off the (label or pseudo) boxes. A degenerate map (all
    zero or constant) falls back to uniform weights (plain imitation), counted in ``degenerate`` and logged once.

    Gradients: the teacher's detection loss on the actual augmented batch, for the whole batch at once, by
    re-running only its frozen Detect head (eval, FP32) on detached neck maps (the released code re-reads each image
    from disk, un-augmented, and runs two full detectors per image); ``targets='teacher'`` uses the teacher's
    detections (score > 0.3, top 10) as pseudo-GT as the code does. In the released code both maps are NumPy
    constants (no gradient reaches the student) and every config copies the teacher's neck and head into the student
    (``init_student``); here the student's map is differentiable through its activations (the Grad-CAM weights are
    constants, as in Grad-CAM), and there is no weight copying (teacher and student widths differ).

    Defaults (ours): Ultralytics' projector (``adapter='mlp'``) as ``builtin``, whose normalisation this term shares;
    ``gate=True`` and ``weight`` 12, picked for ``gkd+bmfi`` by a rule fixed before the runs (docs/experiments/C-*,
    cpu-small; weights 24 and 48 in D-*, the ``score`` map in D3-*: neither carried over, so 12 and ``cell`` stay).
    ``cam_weight`` 0.6 in ``gkdpaper`` = the released one-stage beta 0.1 x ~6 (mmdet's summed loss is ~6x smaller).
    """

    requires = frozenset({"box_branch", "task_loss"})
    prefix = "gkd"

    @classmethod
    def check_args(cls, args: dict) -> None:
        """``source``, ``targets`` and ``map`` are among their choices; ``map=score`` needs ``targets=labels``."""
        super().check_args(args)
        source, targets, cam = args.get("source", "teacher"), args.get("targets", "labels"), args["map"]
        if source not in {"teacher", "student"} or targets not in {"labels", "teacher"}:
            raise KDError(f"gkd: source must be teacher|student and targets labels|teacher, got {source}, {targets}")
        if cam not in MAPS:
            raise KDError(f"gkd: map must be one of {', '.join(MAPS)}, got {cam}")
        if cam == "score" and targets == "teacher":
            raise KDError("gkd: map=score reads the teacher's assignment to the labels; use targets=labels with it")

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
        """Build adapters (options are checked by ``check_args`` when the method is parsed)."""
        super().__init__(s_channels, t_channels)
        self.weight, self.cam_weight, self.source, self.targets = weight, cam_weight, source, targets
        self.map, self.gate, self.conf, self.max_det = map, bool(gate), conf, max_det
        self.adapt = adapters(s_channels, t_channels, adapter) if weight > 0 else None
        p = self.prefix
        self.names = tuple(n for n, w in ((p, weight), (f"{p}_cam", cam_weight)) if w > 0) or (p,)
        self.degenerate = [0] * len(s_channels)  # images whose map fell back to uniform, per level

    def make_map(self, feat: Tensor, grad: Tensor) -> Tensor:
        """The configured (B, H, W) map of one level (``score`` is a Grad-CAM of another target)."""
        return (cell_map if self.map == "cell" else grad_cam)(feat, grad)

    def targets_batch(self, x: KDInputs) -> dict:
        """The batch whose boxes the teacher's loss (and the gate) uses: labels or teacher pseudo-labels."""
        if self.targets == "teacher":
            return {**x.batch, **pseudo_targets(x.teacher.pred, x.batch["img"].shape[-2:], self.conf, self.max_det)}
        return x.batch

    def teacher_maps(self, x: KDInputs) -> list[Tensor]:
        """Maps of the teacher's detection loss (or score target) w.r.t. its neck maps, (B, H, W) per level."""
        with torch.enable_grad():
            feats = [f.detach().float().requires_grad_(True) for f in x.t_feats]
            if self.map == "score":
                loss = score_target(x.teacher.logits(feats), x.assign("teacher"), x.batch)
            else:
                loss = x.teacher.task_loss(feats, self.targets_batch(x), teacher_classes=self.targets == "teacher")
            grads = torch.autograd.grad(loss, feats, allow_unused=True)
        return [self.make_map(f.detach(), torch.zeros_like(f) if g is None else g) for f, g in zip(feats, grads)]

    def student_maps(self, x: KDInputs) -> list[Tensor]:
        """Maps of the student's detection loss w.r.t. its neck maps (differentiable through activations)."""
        grads = torch.autograd.grad(x.task_loss, x.s_feats, retain_graph=True, allow_unused=True)
        return [self.make_map(f.float(), torch.zeros_like(f) if g is None else g.float()) for f, g in
                zip(x.s_feats, grads)]  # fmt: skip

    def weights(self, x: KDInputs, maps: list[Tensor]) -> list[Tensor]:
        """Imitation weights: degenerate maps made uniform, then gated to the boxes when ``gate``."""
        maps = uniform_if_degenerate([m.detach() for m in maps], self.degenerate, self.prefix)
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
        m_t = self.teacher_maps(x) if self.source == "teacher" or self.cam_weight > 0 else None
        m_s = self.student_maps(x) if self.source == "student" or self.cam_weight > 0 else None
        out = {}
        if self.weight > 0:
            w = self.weights(x, m_t if self.source == "teacher" else m_s)
            loss = sum(weighted_imitation(a(s.float()), t.float(), m) for a, s, t, m in
                       zip(self.adapt, x.s_feats, x.t_feats, w))  # fmt: skip
            out[p] = self.weight * loss
        if self.cam_weight > 0:
            out[f"{p}_cam"] = self.cam_weight * sum((mt - ms).abs().mean() for mt, ms in zip(m_t, m_s))
        return out or {p: x.s_feats[0].sum() * 0}
