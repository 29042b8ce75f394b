"""Match teacher and student classes by name, so head-based methods work when the teacher knows more classes."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from yolo_kd.errors import KDError


def _norm(name: str) -> str:
    """Case- and separator-insensitive class name ('Traffic_Light' == 'traffic light')."""
    return str(name).lower().replace("_", " ").replace("-", " ").strip()


def class_map(teacher_names: dict | list, student_names: dict | list) -> list[int]:
    """For each student class (in order), the index of the teacher class with the same name, or -1.

    Raises:
        KDError: When no student class name matches a teacher class.
    """
    t = teacher_names if isinstance(teacher_names, dict) else dict(enumerate(teacher_names))
    s = student_names if isinstance(student_names, dict) else dict(enumerate(student_names))
    index = {_norm(v): int(k) for k, v in t.items()}
    out = [index.get(_norm(s[k]), -1) for k in sorted(s)]
    if all(i < 0 for i in out):
        raise KDError(
            f"no student class name matches a teacher class (student {list(s.values())[:5]}..., teacher "
            f"{list(t.values())[:5]}...); fine-tune the teacher on this data or use a pure feature method "
            "(mimic, bmfi, cwd)"
        )
    return out


def placeholder(names: dict | list) -> bool:
    """True when class names are Ultralytics' stand-ins (``0``, ``class0`` ...), i.e. the real names are unknown."""
    import re

    values = names.values() if isinstance(names, dict) else names
    return all(re.fullmatch(r"(class)?[ _]?\d+", _norm(v)) for v in values)


def describe_map(mapping: list[int], student_names: dict | list) -> str:
    """One line saying which classes are distilled and which are not."""
    s = student_names if isinstance(student_names, dict) else dict(enumerate(student_names))
    names = [s[k] for k in sorted(s)]
    missing = [n for n, i in zip(names, mapping) if i < 0]
    line = f"class mapping by name: {len(names) - len(missing)}/{len(names)} student classes found in the teacher"
    return line + (f"; not distilled (no teacher class): {missing}" if missing else "")


def plan(t_names: dict | None, s_names: dict | None, nc_t: int, nc_s: int, needs: bool, method: str
         ) -> tuple[list[int] | None, str]:  # fmt: skip
    """The one class-count policy, used by the pre-flight data check and by the model.

    Args:
        t_names (dict | None): Teacher class names by id.
        s_names (dict | None): Student (data) class names by id.
        nc_t (int): Teacher class count.
        nc_s (int): Student class count.
        needs (bool): The method reads class-dependent teacher outputs (``losses.needs_classes``).
        method (str): The method, for messages.

    Returns:
        (tuple): Student -> teacher class ids, or None when no mapping is needed or possible; a log line or "".

    Raises:
        KDError: A class-dependent method with different class counts and no usable or no shared names.
    """
    if nc_s == nc_t and (not s_names or not t_names or list(s_names.values()) == list(t_names.values())):
        return None, ""
    if not s_names or not t_names or len(s_names) != nc_s:
        if not needs:
            return None, ""
        raise KDError(f"method '{method}' reads the teacher's classes but teacher has nc={nc_t}, student nc={nc_s}")
    try:
        mapping = class_map(t_names, s_names)
    except KDError:
        if not needs:
            return None, "no teacher class name matches the data's; feature terms only, classes are not mapped"
        if nc_s != nc_t:
            raise
        if not (placeholder(t_names) or placeholder(s_names)):  # real names, none shared: index pairs are a guess
            raise KDError(
                f"method '{method}' reads the teacher's classes, but no teacher class name matches the data's "
                f"(teacher {list(t_names.values())[:8]}, data {list(s_names.values())[:8]}); fine-tune the teacher "
                "on this data, give both the same class names, or use a feature method (mimic, bmfi, cwd)"
            ) from None
        return None, "teacher class names are placeholders (0, class0, ...); distilling classes by index"
    return mapping, describe_map(mapping, s_names)


def model_class_map(student, teacher, nc_s: int, nc_t: int, needs: bool, method: str) -> Tensor | None:
    """Student -> teacher class ids of two detectors by their ``names`` (see ``plan``), logged once."""
    from ultralytics.utils import LOGGER

    mapping, line = plan(getattr(teacher, "names", None), getattr(student, "names", None), nc_t, nc_s, needs,
                         method)  # fmt: skip
    if line:
        (LOGGER.info if mapping is not None else LOGGER.warning)(f"yolo-kd: {line}")
    return None if mapping is None else torch.tensor(mapping, device=next(student.parameters()).device)


def map_scores(mapping: Tensor | None, t_scores: Tensor, s_scores: Tensor) -> Tensor:
    """Teacher class logits (B, nc_t, A) in the student's class order (B, nc_s, A).

    Classes the teacher lacks get the student's own (detached) logits, so KL-type terms on them are zero.
    """
    if mapping is None:
        return t_scores
    m = mapping.to(t_scores.device)
    out = t_scores[:, m.clamp(min=0)]
    return torch.where((m >= 0).view(1, -1, 1), out, s_scores.detach().to(out.dtype))


def map_batch(mapping: Tensor | None, batch: dict[str, Any]) -> dict[str, Any]:
    """The batch's labels in teacher class ids (labels of classes the teacher lacks dropped)."""
    if mapping is None:
        return batch
    m = mapping.to(batch["cls"].device)
    t_cls = m[batch["cls"].view(-1).long()]
    keep = t_cls >= 0
    return {**batch, "cls": t_cls[keep].view(-1, 1).float(), "batch_idx": batch["batch_idx"][keep],
            "bboxes": batch["bboxes"][keep]}  # fmt: skip
