"""Head services for KDModel: the teacher's head (its loss, logits, assigner), head pairs and the per-batch assignment.

``TeacherHead`` owns its criteria (built on first use, dropped when pickled) but never the teacher module: Ultralytics'
EMA deep-copies the KDModel and strips only ``teacher_model`` by name, so each call is handed the teacher.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn
from ultralytics.utils.loss import v8DetectionLoss

from yolo_kd.classmap import map_batch, map_scores
from yolo_kd.losses.base import Assignment, Head, Side, TeacherView


class TeacherHead:
    """The frozen teacher's Detect head as a service: its detection loss, its logits in student classes, its assigner.

    Args:
        class_map (Tensor | None): Student -> teacher class indices (None: the same classes).
        nc (int): The student's class count (the teacher's logits are mapped to it).
    """

    def __init__(self, class_map: Tensor | None, nc: int) -> None:
        """Store what the criteria need; they are built on first use."""
        self.class_map, self.nc = class_map, nc
        self._loss: v8DetectionLoss | None = None
        self._assign: v8DetectionLoss | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Drop the criteria (rebuilt on demand): they hold the teacher's head."""
        return {**self.__dict__, "_loss": None, "_assign": None}

    def task_loss(
        self, teacher: nn.Module, hyp: Any, feats: list[Tensor], batch: dict[str, Any], teacher_classes: bool = False,
        low: bool = False,
    ) -> Tensor:  # fmt: skip
        """Teacher detection loss of given level maps: re-runs only the frozen head (eval mode).

        The head runs in FP32, or in bf16 when the teacher forward does (``low``; ``kd_teacher_precision``): 142 -> 62
        ms for its forward + backward on a yolov8s at 320, batch 8, with a 0.5-1.3 % gradient error (docs/benchmarks.md
        D4b). An fp16 teacher keeps an FP32 head: gradients through fp16 can underflow without a loss scaler. The loss
        is FP32.

        Args:
            teacher (nn.Module): The teacher DetectionModel.
            hyp (Any): The run's hyper-parameters (box/cls/dfl gains: the student's ``args``).
            feats (list[Tensor]): Teacher level maps (may require grad: gradient-guided methods differentiate this).
            batch (dict): Ultralytics target batch, labels in student class ids unless ``teacher_classes``.
            teacher_classes (bool): The labels already are teacher class ids (e.g. teacher pseudo-labels).
            low (bool): Run the head under bf16 autocast.

        Returns:
            (Tensor): Scalar loss (box + cls + dfl, summed).
        """
        head = teacher.model[-1]
        if self._loss is None:
            self._loss = v8DetectionLoss(teacher)
            self._loss.hyp = hyp  # box/cls/dfl gains of this run
        dev = feats[0].device.type
        with torch.autocast(dev, dtype=torch.bfloat16 if low else torch.float32, enabled=low):
            preds = head.forward_head(feats, **head.one2many)
        with torch.autocast(dev, enabled=False):
            preds = {k: v.float() if isinstance(v, Tensor) else v for k, v in preds.items()}
            labels = batch if teacher_classes else map_batch(self.class_map, batch)
            return self._loss.get_assigned_targets_and_loss(preds, labels)[1].sum()

    def logits(self, teacher: nn.Module, feats: list[Tensor]) -> Tensor:
        """Teacher class logits of given level maps in the student's class order: re-runs only the frozen head (FP32).

        Args:
            teacher (nn.Module): The teacher DetectionModel.
            feats (list[Tensor]): Teacher level maps (may require grad: score-target maps differentiate this).

        Returns:
            (Tensor): (B, nc_student, A) logits; classes the teacher lacks are zeros (no gradient).
        """
        head = teacher.model[-1]
        with torch.autocast(feats[0].device.type, enabled=False):
            t = head.forward_head(feats, **head.one2many)["scores"]
        return map_scores(self.class_map, t, t.new_zeros(t.shape[0], self.nc, t.shape[2]))

    def assign_criterion(self, teacher: nn.Module, hyp: Any) -> v8DetectionLoss:
        """A criterion on the teacher's head (its reg_max and strides) whose assigner scores the student's classes."""
        if self._assign is None:
            c = v8DetectionLoss(teacher)
            c.hyp = hyp
            c.nc = c.assigner.num_classes = self.nc  # teacher scores are in student classes
            c.no = c.nc + c.reg_max * 4
            self._assign = c
        return self._assign

    def view(self, teacher: nn.Module, hyp: Any, pred: Tensor | None, low: bool) -> TeacherView:
        """The typed teacher view a batch's ``KDInputs`` carries (``low``: the forward runs in bf16)."""
        return TeacherView(teacher.model[-1], pred, partial(self.task_loss, teacher, hyp, low=low),
                           partial(self.logits, teacher))  # fmt: skip


def assigner(
    student_criterion: Any, teacher: Callable[[], v8DetectionLoss], s_head: Head, t_head: Head, batch: dict
) -> Callable[[Side], Assignment]:
    """A per-batch cached task-aligned assignment for either side ("student" | "teacher"), without gradients.

    The student's is its own criterion's (its one-to-many branch for end-to-end heads); the teacher's comes from
    ``teacher()``, the teacher head's criterion (``TeacherHead.assign_criterion``), built only when asked.
    """
    cache: dict[str, Assignment] = {}

    def assign(side: Side) -> Assignment:
        if side not in cache:
            head = s_head if side == "student" else t_head
            crit = getattr(student_criterion, "one2many", student_criterion) if side == "student" else teacher()
            with torch.no_grad():
                preds = {k: head[k].detach().float() for k in ("boxes", "scores")} | {"feats": head["feats"]}
                cache[side] = Assignment(*crit.get_assigned_targets_and_loss(preds, batch)[0])
        return cache[side]

    return assign


def pair(decouple: Callable, class_map: Tensor | None, s_out: Any, t_out: Any, branch: str) -> tuple[Head, Head]:
    """Student and teacher raw heads of one branch, the teacher's scores in student classes.

    ``decouple`` is Ultralytics' ``decouple_outputs``; ``raw_scores`` keeps the teacher's own classes (crosskd crosses
    into its head).
    """
    s, t = decouple(s_out, branch=branch), dict(decouple(t_out, branch=branch))
    t["raw_scores"], t["scores"] = t["scores"], map_scores(class_map, t["scores"], s["scores"])
    return s, t


def one2one(decouple: Callable, class_map: Tensor | None, s_out: Any, t_out: Any) -> dict[str, dict | None]:
    """The one-to-one branch heads of an end-to-end (YOLO26) pair as KDInputs fields; {} for other pairs."""
    raw = [o[1] if isinstance(o, tuple) else o for o in (s_out, t_out)]
    if not all(isinstance(r, dict) and "one2one" in r for r in raw):
        return {}
    s, t = pair(decouple, class_map, s_out, t_out, "one2one")
    return {"s_head_o2o": s, "t_head_o2o": t}
