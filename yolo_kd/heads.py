"""Head services for KDModel: the teacher's detection loss, cached task-aligned assignment, and head pairs.

Functions of the model rather than methods, so KDModel keeps one job (wrap, build the method, ``loss``). Their
criteria are cached on the model (``_t_criterion``, ``_t_assign``; dropped when it is pickled).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from ultralytics.utils.loss import v8DetectionLoss

from yolo_kd.losses.base import Assignment, Head, Side

if TYPE_CHECKING:  # the KDModel, typed as a module: importing yolo_kd.model here would close a circle
    from torch.nn import Module


def teacher_task_loss(m: Module, feats: list[Tensor], batch: dict[str, Any], teacher_classes: bool = False) -> Tensor:
    """Teacher detection loss of given level maps: re-runs only the frozen head (eval mode).

    The head runs in FP32, or in bf16 when the teacher forward does (``kd_teacher_precision``): 142 -> 62 ms for its
    forward + backward on a yolov8s at 320, batch 8, with a 0.5-1.3 % gradient error (docs/benchmarks.md D4b). An
    fp16 teacher keeps an FP32 head: gradients through fp16 can underflow without a loss scaler. The loss is FP32.

    Args:
        m (Module): The KDModel (its teacher, student args and class map).
        feats (list[Tensor]): Teacher level maps (may require grad: gradient-guided methods differentiate this).
        batch (dict): Ultralytics target batch, labels in student class ids unless ``teacher_classes``.
        teacher_classes (bool): The labels already are teacher class ids (e.g. teacher pseudo-labels).

    Returns:
        (Tensor): Scalar loss (box + cls + dfl, summed).
    """
    head = m.teacher_model.model[-1]
    if m._t_criterion is None:
        m._t_criterion = v8DetectionLoss(m.teacher_model)
        m._t_criterion.hyp = m.student_model.args  # box/cls/dfl gains of this run
    dev, low = feats[0].device.type, m.teacher_dtype is torch.bfloat16
    with torch.autocast(dev, dtype=torch.bfloat16 if low else torch.float32, enabled=low):
        preds = head.forward_head(feats, **head.one2many)
    with torch.autocast(dev, enabled=False):
        preds = {k: v.float() if isinstance(v, Tensor) else v for k, v in preds.items()}
        labels = batch if teacher_classes else m.teacher_batch(batch)
        return m._t_criterion.get_assigned_targets_and_loss(preds, labels)[1].sum()


def teacher_logits(m: Module, feats: list[Tensor]) -> Tensor:
    """Teacher class logits of given level maps in the student's class order: re-runs only the frozen head (FP32).

    Args:
        m (Module): The KDModel (its teacher, student head and class map).
        feats (list[Tensor]): Teacher level maps (may require grad: score-target maps differentiate this).

    Returns:
        (Tensor): (B, nc_student, A) logits; classes the teacher lacks are zeros (no gradient).
    """
    from yolo_kd.classmap import map_scores

    head = m.teacher_model.model[-1]
    with torch.autocast(feats[0].device.type, enabled=False):
        t = head.forward_head(feats, **head.one2many)["scores"]
    return map_scores(m.class_map, t, t.new_zeros(t.shape[0], m.student_model.model[-1].nc, t.shape[2]))


def assign_criterion(m: Module, side: Side) -> v8DetectionLoss:
    """Criterion whose task-aligned assigner serves one side.

    The student's own criterion (its one-to-many branch for end-to-end heads), or one built on the teacher's head
    (its reg_max and strides) that scores the student's classes (teacher logits are mapped to them).
    """
    if side == "student":
        c = m.student_model.criterion
        return getattr(c, "one2many", c)
    if m._t_assign is None:
        c = v8DetectionLoss(m.teacher_model)
        c.hyp = m.student_model.args
        c.nc = c.assigner.num_classes = m.student_model.model[-1].nc  # teacher scores are in student classes
        c.no = c.nc + c.reg_max * 4
        m._t_assign = c
    return m._t_assign


def assigner(m: Module, s_head: Head, t_head: Head, batch: dict) -> Callable[[Side], Assignment]:
    """A per-batch cached task-aligned assignment for either side ("student" | "teacher"), without gradients."""
    cache: dict[str, Assignment] = {}

    def assign(side: Side) -> Assignment:
        if side not in cache:
            head = s_head if side == "student" else t_head
            with torch.no_grad():
                preds = {k: head[k].detach().float() for k in ("boxes", "scores")} | {"feats": head["feats"]}
                cache[side] = Assignment(*assign_criterion(m, side).get_assigned_targets_and_loss(preds, batch)[0])
        return cache[side]

    return assign


def pair(m: Module, s_out: Any, t_out: Any, branch: str) -> tuple[Head, Head]:
    """Student and teacher raw heads of one branch, the teacher's scores in student classes.

    ``raw_scores`` keeps the teacher's own classes (crosskd crosses into the teacher's head).
    """
    s, t = m.decouple_outputs(s_out, branch=branch), dict(m.decouple_outputs(t_out, branch=branch))
    t["raw_scores"], t["scores"] = t["scores"], m.teacher_scores(t["scores"], s["scores"])
    return s, t


def one2one(m: Module, s_out: Any, t_out: Any) -> dict[str, dict | None]:
    """The one-to-one branch heads of an end-to-end (YOLO26) pair as KDInputs fields; {} for other pairs."""
    raw = [o[1] if isinstance(o, tuple) else o for o in (s_out, t_out)]
    if not all(isinstance(r, dict) and "one2one" in r for r in raw):
        return {}
    s, t = pair(m, s_out, t_out, "one2one")
    return {"s_head_o2o": s, "t_head_o2o": t}
