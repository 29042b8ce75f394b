"""The distillation interface: one frozen input record and one base class every method subclasses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, TypedDict

import torch
from torch import Tensor, nn

from yolo_kd.errors import KDError
from yolo_kd.losses.layers import Conv1x1


def batch_targets(batch: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
    """An Ultralytics target batch as (batch_idx (N,), cls (N,), boxes (N, 4) xyxy in input-image pixels).

    Rotated boxes (an obb batch's normalized ``x y w h`` plus the angle in radians) become the axis-aligned boxes
    that enclose them: the foreground region feature methods mask.
    """
    img = batch["img"]
    h, w = img.shape[-2:]
    b = batch["bboxes"].to(img.device).float()
    scale = b.new_tensor([w, h, w, h])
    xy, wh = b[:, :2] * scale[:2], b[:, 2:4] * scale[2:]
    if b.shape[1] == 5:  # enclosing box of a w x h rectangle turned by r: extents |w cos r| + |h sin r| ...
        cos, sin = b[:, 4].cos().abs(), b[:, 4].sin().abs()
        wh = torch.stack([wh[:, 0] * cos + wh[:, 1] * sin, wh[:, 0] * sin + wh[:, 1] * cos], 1)
    boxes = torch.cat([xy - wh / 2, xy + wh / 2], 1)
    return batch["batch_idx"].to(img.device).long().view(-1), batch["cls"].view(-1).long(), boxes


Side = Literal["student", "teacher"]  # whose predictions an assignment scores


class Assignment(NamedTuple):
    """Ultralytics' task-aligned assignment of one side's predictions to the ground truth (a tuple: unpacks too).

    Attributes:
        fg (Tensor): (B, A) bool, anchors assigned to an object.
        gt_idx (Tensor): (B, A) index of the assigned object within its image.
        boxes (Tensor): (B, A, 4) assigned target boxes, xyxy in input pixels.
        anchors (Tensor): (A, 2) anchor centres in stride units.
        stride (Tensor): (A, 1) stride of each anchor.
    """

    fg: Tensor
    gt_idx: Tensor
    boxes: Tensor
    anchors: Tensor
    stride: Tensor


class Head(TypedDict, total=False):
    """One side's raw head as Ultralytics' ``decouple_outputs`` returns it (a dict: its criteria take it as is).

    Attributes:
        boxes (Tensor): (B, 4 * reg_max, A) box-distribution logits.
        scores (Tensor): (B, nc, A) class logits; the teacher's mapped to the student's classes.
        feats (list[Tensor]): The level maps the head read (Ultralytics' assigner reads them for the anchors).
        raw_scores (Tensor): Teacher only: its logits in its own classes (head-crossing methods).
    """

    boxes: Tensor
    scores: Tensor
    feats: list[Tensor]
    raw_scores: Tensor


class TeacherView(NamedTuple):
    """What a method may ask of the frozen teacher beyond its maps and raw head (KDModel fills it per batch).

    Attributes:
        detect (nn.Module | None): Its Detect head (eval mode, no parameter gradients; head-crossing methods run parts).
        pred (Tensor | None): Its decoded output (B, 4 + nc_t, A): xywh boxes in input pixels and class probabilities
            in teacher classes (None when its head returned raw maps only).
        task_loss (Callable | None): Maps (teacher level maps, batch, teacher_classes=False) to its detection loss;
            ``teacher_classes=True`` when the batch's labels already are teacher class ids. Differentiable w.r.t. the
            maps (gradient-guided methods).
        logits (Callable | None): Maps teacher level maps to its class logits (B, nc, A) in the student's class
            order, re-running only its frozen head (FP32); differentiable w.r.t. the maps (score-target maps).
    """

    detect: nn.Module | None = None
    pred: Tensor | None = None
    task_loss: Callable[..., Tensor] | None = None
    logits: Callable[[list[Tensor]], Tensor] | None = None


@dataclass(frozen=True)
class KDInputs:
    """Everything a distillation method may read for one training batch.

    Attributes:
        s_feats (list[Tensor]): Student Detect inputs P3..P5, (B, Cs_l, H_l, W_l), in the autograd graph.
        t_feats (list[Tensor]): Teacher maps at the same strides, (B, Ct_l, H_l, W_l), no grad.
        s_head (Head): Student raw head: "boxes" (B, 4*reg_max, A) and "scores" (B, nc, A) logits.
        t_head (Head): Teacher raw head, same layout, plus "raw_scores" in its own classes.
        batch (dict[str, Any]): Ultralytics batch: img, cls (N, 1), bboxes (N, 4) normalised xywh, batch_idx (N,).
        strides (list[float]): Stride of each level.
        progress (float): Training progress in [0, 1] (epoch / epochs).
        task_loss (Tensor | None): Student detection loss (scalar, graph kept), for gradient-guided methods.
        teacher (TeacherView): The teacher's head module, decoded output, detection loss and logits.
        assign (Callable | None): Maps a side ("student" | "teacher") to its ``Assignment``; cached per batch.
        s_detect (nn.Module | None): The student's Detect head (head-crossing methods run parts of it).
        s_head_o2o, t_head_o2o (Head | None): The one-to-one (NMS-free) branch heads, same layout as ``s_head`` (teacher
            scores in student classes), when both models are end-to-end (YOLO26); None otherwise.
    """

    s_feats: list[Tensor]
    t_feats: list[Tensor]
    s_head: Head
    t_head: Head
    batch: dict[str, Any]
    strides: list[float] = field(default_factory=lambda: [8.0, 16.0, 32.0])
    progress: float = 0.0
    task_loss: Tensor | None = None
    teacher: TeacherView = TeacherView()
    assign: Callable[[Side], Assignment] | None = None
    s_detect: nn.Module | None = None
    s_head_o2o: Head | None = None
    t_head_o2o: Head | None = None

    @property
    def gt(self) -> tuple[Tensor, Tensor, Tensor]:
        """Ground truth as (batch_idx (N,), cls (N,), boxes (N, 4) xyxy in input-image pixels)."""
        return batch_targets(self.batch)


ADAPTERS = ("conv", "mlp", "align")
REQUIRES = {  # what a method may declare in ``requires``, and what each one means to the engine
    "scores": "reads class-dependent head outputs: teacher and data classes must correspond (same, or by name)",
    "task_loss": "reads task_loss / teacher.task_loss (gradient-guided): also class-dependent",
    "detect_modules": "reads x.s_detect / x.teacher.detect (only KDModel provides them)",
    "box_branch": "reads the axis-aligned box branch (assignment, teacher loss, head): not for obb students",
    "dfl": "needs DFL heads with equal reg_max > 1 (not YOLO26)",
}


class DistillLoss(nn.Module):
    """Base class of a distillation method: owns its adapters and returns named, weighted scalar terms.

    Subclasses set ``names`` (the loss-item keys, each prefixed with the registry key; ``register`` sets
    ``(key,)`` when a class declares none), ``requires`` (a subset of ``REQUIRES``: what the engine must provide
    or check), ``task`` (the task both sides must have, for mask/keypoint terms) and, when an option has choices or
    ranges, ``check_args``. ``forward`` returns ``{name: scalar}`` already weighted, averaged per image (or, with one
    term, the bare scalar); the caller multiplies by batch size as Ultralytics does for its own loss.
    """

    names: tuple[str, ...] = ()
    key: str = ""  # set by ``register``
    requires: frozenset[str] = frozenset()
    task: str | None = None  # the task student and teacher must both have (masks, keypoints); None: any

    @classmethod
    def check_args(cls, args: dict[str, Any]) -> None:
        """Raise a one-line ``KDError`` for an option value the method cannot take.

        ``args`` holds every option, defaults filled in. Called when the method string is parsed, before anything is
        built; the base checks ``adapter``.
        """
        if "adapter" in args and args["adapter"] not in ADAPTERS:
            raise KDError(f"{cls.key}_adapter={args['adapter']!r} is not one of {', '.join(ADAPTERS)}")

    def __init__(self, s_channels: list[int], t_channels: list[int]) -> None:
        """Store channel counts per level (student and teacher)."""
        super().__init__()
        self.s_channels, self.t_channels = list(s_channels), list(t_channels)

    def forward(self, x: KDInputs) -> dict[str, Tensor]:  # pragma: no cover - abstract
        """Return ``{name: weighted scalar}`` for this batch."""
        raise NotImplementedError

    def check(self, out: dict[str, Tensor] | Tensor) -> dict[str, Tensor]:
        """Return ``forward``'s terms as ``{name: scalar}``, checking (once) that they are the declared ``names``.

        A method with one term may return the bare scalar (named by its only name, its key by default). Without the
        check, a plugin whose terms differ from its names builds fine and fails in Ultralytics' validator after a
        whole epoch; here it stops on the first batch with a KDError naming the method.
        """
        who = self.key or type(self).__name__
        if isinstance(out, Tensor):
            if len(self.names) != 1:
                raise KDError(
                    f"method '{who}' returned one scalar but declares names {list(self.names)}; "
                    "return {name: scalar} for each"
                )
            out = {self.names[0]: out}
        if not getattr(self, "_checked", False):
            if tuple(out) != tuple(self.names):
                raise KDError(
                    f"method '{who}' returned terms {list(out)} but declares names "
                    f"{list(self.names)}; make forward() return exactly its names, in that order"
                )
            self._checked = True
        return out

    def bind(self, s_detect: nn.Module, t_detect: nn.Module) -> None:
        """Build modules that depend on the heads (called once by KDModel before the optimizer exists)."""

    def spatial_weights(self, x: KDInputs) -> dict[str, list[Tensor]]:
        """Per term, the (B, H, W) weight each level's imitation puts on its cells (for ``yolo-kd inspect``).

        Methods without a spatial weighting return ``{}``.
        """
        return {}

    def zeros(self, device: torch.device | str = "cpu") -> dict[str, Tensor]:
        """Return every term as zero (used in validation, where there is no teacher)."""
        return {k: torch.zeros((), device=device) for k in self.names}


def adapters(s_channels: list[int], t_channels: list[int], kind: str = "conv") -> nn.ModuleList:
    """One student->teacher adapter per level.

    ``conv``: a 1x1 conv (FitNets regressor); ``mlp``: Ultralytics' conv1x1-ReLU-conv1x1 projector (distill_model=);
    ``align``: identity where the widths are equal, else a 1x1 conv (what CWD/MGD/FGD/PKD's code does).
    """
    if kind not in ADAPTERS:
        raise KDError(f"adapter='{kind}' is not one of {', '.join(ADAPTERS)}")
    if kind in {"conv", "align"}:
        keep = kind == "align"
        return nn.ModuleList(
            nn.Identity() if keep and s == t else Conv1x1(s, t) for s, t in zip(s_channels, t_channels)
        )
    return nn.ModuleList(
        nn.Sequential(Conv1x1(s, t), nn.ReLU(inplace=True), Conv1x1(t, t)) for s, t in zip(s_channels, t_channels)
    )


class Combined(DistillLoss):
    """Several methods trained together (``method=a+b``); each keeps its own weights and adapters."""

    def __init__(self, parts: dict[str, DistillLoss]) -> None:
        """Hold the named parts in order."""
        first = next(iter(parts.values()))
        super().__init__(first.s_channels, first.t_channels)
        self.parts = nn.ModuleDict(parts)
        self.names = tuple(n for p in parts.values() for n in p.names)
        self.requires = frozenset().union(*(p.requires for p in parts.values()))

    def bind(self, s_detect: nn.Module, t_detect: nn.Module) -> None:
        """Bind every part."""
        for part in self.parts.values():
            part.bind(s_detect, t_detect)

    def spatial_weights(self, x: KDInputs) -> dict[str, list[Tensor]]:
        """The spatial weights of every part."""
        return {k: v for part in self.parts.values() for k, v in part.spatial_weights(x).items()}

    def forward(self, x: KDInputs) -> dict[str, Tensor]:
        """Concatenate the term dicts of every part."""
        out: dict[str, Tensor] = {}
        for part in self.parts.values():
            out.update(part.check(part(x)))
        return out
