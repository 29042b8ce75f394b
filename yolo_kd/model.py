"""KDModel: Ultralytics' DistillationModel with a pluggable distillation loss."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from ultralytics.nn.distill_model import DistillationModel

from yolo_kd.errors import KDError
from yolo_kd.heads import TeacherHead, assigner, one2one, pair
from yolo_kd.losses import MethodSpec, parse_method
from yolo_kd.losses.base import KDInputs, TeacherView
from yolo_kd.pseudo import TARGET_KEYS, PseudoLabeler, part, split_loss, with_targets
from yolo_kd.teacher_precision import TeacherForward


class KDModel(DistillationModel):
    """Teacher-student wrapper whose loss is the student's detection loss plus a registry method's terms.

    Subclassing Ultralytics' DistillationModel keeps its plumbing: the frozen teacher (eval, no grad), picklable
    feature hooks on the Detect inputs and head, the EMA copy without the teacher, and ``strip_optimizer`` saving a
    plain student ``DetectionModel`` to best.pt/last.pt. Method modules (adapters) live in ``kd_loss``: trained by
    the optimizer, saved in mid-training checkpoints for resume, never in the final student checkpoint.

    Attributes:
        kd_loss (DistillLoss): The distillation method(s).
        kd_spec (MethodSpec): The parsed method: registry key(s), e.g. ``("gkd", "bmfi")``, and their options.
        kd_method (str): Its string, e.g. ``"gkd+bmfi"``.
        progress (float): Training progress in [0, 1], set by the trainer each epoch.
        kd_scale (float): Schedule multiplier of every KD term, set by the trainer each epoch.
    """

    def __init__(
        self,
        teacher_model: str | Path | nn.Module,
        student_model: nn.Module,
        method: str | MethodSpec | None = None,
        kd_args: dict[str, dict] | None = None,  # with a method string; a MethodSpec carries its own
        balance: str = "off",
        share: float | dict = 1.0,
        balance_every: int = 20,
        teacher_precision: str = "fp32",  # direct use: exact FP32 maps; the trainer passes kd_teacher_precision
        pseudo: PseudoLabeler | None = None,
    ) -> None:
        """Wrap teacher and student, then build the method with channel counts from a dummy forward."""
        super().__init__(teacher_model, student_model)
        device = next(student_model.parameters()).device
        if method is None:
            from yolo_kd.cfg import KD_DEFAULTS

            method = KD_DEFAULTS["method"]  # one default for the CLI, the trainer and direct use
        n = len(self.feats_idx) - 1
        s_ch = [self._student_feats[i].shape[1] for i in range(n)]
        t_ch = [self._teacher_feats[i].shape[1] for i in range(n)]
        s_det, t_det = self.student_model.model[-1], self.teacher_model.model[-1]
        if s_det.stride.tolist() != t_det.stride.tolist():
            raise KDError(f"teacher strides {t_det.stride.tolist()} differ from student {s_det.stride.tolist()}")
        self._teacher_feats.clear()
        self._student_feats.clear()
        self.kd_spec = spec = parse_method(method, kd_args)
        from yolo_kd.preflight import check_method_task
        from yolo_kd.teacher import task_of_model

        check_method_task(spec, task_of_model(self.student_model), task_of_model(self.teacher_model))
        self.kd_loss = spec.build(s_ch, t_ch)
        self.kd_loss.bind(s_det, t_det)
        self.kd_loss.to(device)
        self.class_map = self._class_map(s_det.nc, t_det.nc)
        if "dfl" in spec.requires and (s_det.reg_max <= 1 or s_det.reg_max != t_det.reg_max):
            raise KDError(
                f"method '{spec.name}' needs DFL heads with equal reg_max > 1 (teacher {t_det.reg_max}, student "
                f"{s_det.reg_max}); YOLO26 heads have reg_max=1 - use a feature method such as mimic or gkd"
            )
        self.strides = s_det.stride.tolist()
        self.progress, self.kd_scale = 0.0, 1.0
        self.nonfinite_steps = 0  # batches whose KD terms were skipped as non-finite
        self.teacher_head = TeacherHead(self.class_map, s_det.nc)  # its loss, logits and assigner: services that
        self.teacher_forward = TeacherForward(teacher_precision, device)  # own their state, never the teacher
        if pseudo is not None:  # unlabeled images in the batch: the teacher's pseudo-labels supervise them
            from yolo_kd.preflight import check_unlabeled_teacher

            check_unlabeled_teacher(task_of_model(self.student_model), task_of_model(self.teacher_model))
            kpt = getattr(t_det, "kpt_shape", None)
            pseudo = replace(pseudo, task=task_of_model(self.student_model), nc_t=t_det.nc,
                             kpt_shape=tuple(kpt) if kpt is not None else None)  # fmt: skip
        self.pseudo = pseudo
        self.balancer = None
        if balance == "auto":
            from yolo_kd.balance import Balancer

            self.balancer = Balancer(self.kd_loss.names, share, balance_every).to(device)

    @property
    def kd_names(self) -> tuple[str, ...]:
        """The loss items this model adds to the student's own: the method's terms and the pseudo-label counters."""
        return (*self.kd_loss.names, "pseudo", "pl_share")

    def shared_params(self) -> list[Tensor]:
        """The student's backbone and neck parameters: what every KD term's gradient reaches."""
        head = {id(p) for p in self.student_model.model[-1].parameters()}
        return [p for p in self.student_model.parameters() if p.requires_grad and id(p) not in head]

    def _class_map(self, nc_s: int, nc_t: int) -> Tensor | None:
        """Student -> teacher class indices by name when the heads differ (None when they are the same)."""
        from yolo_kd.classmap import model_class_map

        needs = self.kd_spec.needs_classes  # the rule the trainer's pre-flight check uses
        return model_class_map(self.student_model, self.teacher_model, nc_s, nc_t, needs, self.kd_method)

    @property
    def kd_method(self) -> str:
        """The method string, e.g. ``"gkd+bmfi"`` (``kd_spec.name``)."""
        return self.kd_spec.name

    @property
    def teacher_dtype(self) -> torch.dtype | None:
        """The teacher forward's autocast dtype (None: FP32), after its first-batch check possibly FP32 again."""
        return self.teacher_forward.dtype

    @teacher_dtype.setter
    def teacher_dtype(self, dtype: torch.dtype | None) -> None:
        self.teacher_forward.dtype = dtype

    def teacher_view(self, pred: Tensor | None = None) -> TeacherView:
        """This batch's view of the teacher (``KDInputs.teacher``): head, decoded output, loss and logits."""
        low = self.teacher_forward.dtype is torch.bfloat16
        return self.teacher_head.view(self.teacher_model, self.student_model.args, pred, low)

    def teacher_task_loss(self, feats: list[Tensor], batch: dict[str, Any], teacher_classes: bool = False) -> Tensor:
        """Teacher detection loss of given level maps (see ``TeacherHead.task_loss``)."""
        return self.teacher_view().task_loss(feats, batch, teacher_classes)

    def finite(self, terms: dict[str, Tensor], x: KDInputs | None = None) -> dict[str, Tensor]:
        """Replace non-finite KD terms by 0 for this batch and warn, naming term and level (see ``guard``)."""
        from yolo_kd.guard import zero_nonfinite

        terms, bad = zero_nonfinite(terms, x, self.strides, self.kd_method, self.nonfinite_steps + 1)
        self.nonfinite_steps += bad
        return terms

    def loss(self, batch: dict[str, Any], preds=None) -> tuple[Tensor, dict[str, Tensor]]:
        """Detection loss plus weighted KD terms (times batch size, Ultralytics' convention).

        In eval mode, or without a teacher (the EMA copy used for validation), the KD terms are zeros under the same
        names, so training and validation logs have identical columns.
        """
        kd = self.training and self.teacher_model is not None
        nl = batch.get("n_labeled")
        pseudo = nl is not None and kd and self.pseudo is not None  # the teacher labels the unlabeled images
        if nl is not None and not pseudo:  # unlabeled images count only through pseudo-labels
            batch, preds = part(batch, 0, nl, self.pseudo.targets if self.pseudo else TARGET_KEYS), None
        if not kd or (self.kd_scale == 0 and not pseudo):
            if preds is None:
                preds = self.student_model(batch["img"])
            det, items = self.student_model.loss(batch, preds)
            return torch.cat([det, det.new_zeros(1)]), {**items, **self.kd_loss.zeros(det.device)}

        det, items, terms, x = self.kd_terms(batch)
        total = sum(terms.values()) * batch["img"].shape[0]
        return torch.cat([det, total.view(1).to(det.dtype)]), {**items, **{k: v.detach() for k, v in terms.items()}}

    def kd_terms(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor], KDInputs]:
        """One training forward: detection loss, its items, the scheduled finite KD terms (graph kept) and inputs."""
        self._teacher_feats.clear()
        self._student_feats.clear()
        self.teacher_forward.run(self, batch["img"])
        n = len(self.feats_idx) - 1
        t_out = self._teacher_feats[n]
        t_pred = t_out[0] if isinstance(t_out, tuple) else None  # decoded eval output (boxes + class scores)
        nl, bs = batch.get("n_labeled"), batch["img"].shape[0]
        mixed = nl is not None and nl < bs  # the batch ends with unlabeled images
        if mixed:
            end2end = bool(getattr(self.teacher_model.model[-1], "end2end", False))
            extra = self.pseudo.label(t_pred if t_pred is not None else t_out, nl, tuple(batch["img"].shape[2:]),
                                      self.student_model.model[-1].nc, self.class_map, end2end=end2end)  # fmt: skip
            batch = with_targets(batch, extra)
        preds = self.student_model(batch["img"])
        if mixed:
            det, items, share = split_loss(self.student_model.loss, batch, preds, nl, self.pseudo.weight,
                                           self.pseudo.targets)  # fmt: skip
            n_pseudo = det.new_tensor(len(extra["cls"]) / (bs - nl))  # pseudo-labels per unlabeled image
            items = {**items, "pseudo": n_pseudo, "pl_share": det.new_tensor(share)}
        else:
            det, items = self.student_model.loss(batch, preds)
        s_head, t_head = pair(self.decouple_outputs, self.class_map, self._student_feats[n], t_out, "one2many")
        teacher_assign = partial(self.teacher_head.assign_criterion, self.teacher_model, self.student_model.args)
        x = KDInputs(
            s_feats=[self._student_feats[i] for i in range(n)],
            t_feats=[self._teacher_feats[i] for i in range(n)],
            s_head=s_head,
            t_head=t_head,
            batch=batch,
            strides=self.strides,
            progress=self.progress,
            task_loss=det.sum() if "task_loss" in self.kd_spec.requires else None,
            teacher=self.teacher_view(t_pred),
            assign=assigner(self.student_model.criterion, teacher_assign, s_head, t_head, batch),
            s_detect=self.student_model.model[-1],
            **one2one(self.decouple_outputs, self.class_map, self._student_feats[n], t_out),
        )
        terms = self.finite({k: v * self.kd_scale for k, v in self.kd_loss.check(self.kd_loss(x)).items()}, x)
        if self.balancer is not None:
            if self.training and self.balancer.due():
                self.balancer.measure(det, terms, self.shared_params(), batch["img"].shape[0])
            terms = self.balancer.apply(terms)
        self._teacher_feats.clear()
        self._student_feats.clear()
        return det, items, terms, x
