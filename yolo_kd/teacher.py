"""Checks on the teacher checkpoint, done before any run directory exists."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from yolo_kd.errors import KDError, with_article
from yolo_kd.paths import resolve_weights


def _levels_of(student: str) -> int | None:
    """Number of Detect input levels of a student .yaml or .pt (None if it cannot be read cheaply)."""
    from ultralytics.nn.tasks import yaml_model_load

    if str(student).endswith((".yaml", ".yml")):
        try:
            head = yaml_model_load(student)["head"][-1]
        except Exception:
            return None
        return len(head[0]) if isinstance(head[0], list) else None
    return None


@functools.lru_cache(maxsize=8)
def _pt_task(path: str, stamp: tuple[int, int], safe: bool) -> str:
    """The task of a .pt file, read once per file version (``stamp``: mtime and size).

    ``yolo-kd train`` asks it to pick the trainer, then the teacher check asks again.
    """
    from ultralytics.nn.tasks import guess_model_task, load_checkpoint

    if safe:
        from yolo_kd.checkpoint.safe_load import safe_model

        m = safe_model(path)
    else:
        m = load_checkpoint(path)[0]
    return guess_model_task(getattr(m, "yaml", None) or m)  # the yaml's head: a loaded model's args say detect


def student_task(student: str | None, safe: bool = False) -> str | None:
    """The Ultralytics task of a student .yaml or .pt (``detect``, ``classify`` ...), None when it cannot be read."""
    from ultralytics.nn.tasks import guess_model_task, yaml_model_load

    if not student:
        return None
    try:
        if str(student).endswith((".yaml", ".yml")):
            return guess_model_task(yaml_model_load(student))
        if str(student).endswith(".pt") and Path(student).exists():
            st = Path(student).stat()
            return _pt_task(str(student), (st.st_mtime_ns, st.st_size), safe)
    except KDError:
        raise
    except Exception as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise KDError(f"student '{student}' is not a readable model ({msg}); pass a YOLO detection .yaml or .pt") from e
    return None


PAIRS: dict[str, tuple[str, ...]] = {  # student task: the teacher tasks it learns from
    "detect": ("detect",),
    "segment": ("segment", "detect"),  # a detector teaches a seg student its boxes, classes and features
    "pose": ("pose", "detect"),
    "obb": ("obb",),  # rotated boxes: an axis-aligned detector's head answers another question
}


def given_teacher_task(overrides: dict[str, Any], task: str) -> str | None:
    """The task of the teacher in ``overrides`` where a ``task`` student's default method may depend on it.

    A seg or pose student may learn from a detector (``PAIRS``), and its default method may need a teacher of its own
    task (maskkd, kptkd). None (read as the student's task) when method= is given, on resume, where ``task`` takes
    teachers of its own task only, or while the teacher cannot be read: ``check_teacher`` reports that in its turn.
    """
    name = overrides.get("teacher", overrides.get("distill_model"))
    if "method" in overrides or overrides.get("resume") or len(PAIRS.get(task, ())) < 2 or not name:
        return None
    try:
        return student_task(resolve_weights(str(name), "teacher"), bool(overrides.get("safe_load")))
    except KDError:
        return None


def check_student_task(student: str | None, task: str | None) -> None:
    """Raise when the student's ``task`` (None: unknown) is not one yolo-kd distills."""
    if task is not None and task not in PAIRS:
        raise KDError(
            f"student '{student}' is {with_article(task)} model; yolo-kd distills {', '.join(PAIRS)} students: pass "
            "one such as student=yolov8n.yaml, yolov8n-seg.yaml, yolov8n-pose.yaml or yolov8n-obb.yaml"
        )


def task_of_model(model) -> str | None:
    """The task of a loaded YOLO model of one of the four box tasks (``detect`` ...), None for any other model."""
    from ultralytics.nn import tasks as t

    kinds = {t.DetectionModel: "detect", t.SegmentationModel: "segment", t.PoseModel: "pose", t.OBBModel: "obb"}
    return kinds.get(type(model))  # exact types: World, RT-DETR and YOLOE subclasses answer other questions


def check_teacher(path: str | Path, student: str | None = None, safe: bool = False) -> dict:
    """Load a teacher checkpoint and check it is a YOLO model whose task can teach the student's (``PAIRS``).

    Returns:
        (dict): ``nc``, ``names``, ``levels``, ``reg_max``, ``stride`` and ``kpt_shape`` of the teacher's head, the
            student's ``task`` and the ``teacher_task``, and the loaded
            ``model`` (FP32, eval), so the trainer builds the KD model from it instead of loading the file again.
    """
    from ultralytics.nn.modules.head import Detect
    from ultralytics.nn.tasks import load_checkpoint

    try:
        if safe:
            from yolo_kd.checkpoint.safe_load import safe_model

            model = safe_model(path)
        else:
            model = load_checkpoint(path)[0]
    except KDError:
        raise
    except Exception as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise KDError(
            f"teacher '{path}' is not a readable Ultralytics checkpoint ({msg}); pass a YOLO detection .pt"
        ) from e
    t_task = task_of_model(model)
    if t_task not in PAIRS or not isinstance(getattr(model, "model", [None])[-1], Detect):
        raise KDError(
            f"teacher '{path}' is a {type(model).__name__}, not a detect, segment, pose or obb model; pass a YOLO "
            "checkpoint of one of those tasks (e.g. one trained with `yolo detect train`)"
        )
    task = student_task(student, safe)
    check_student_task(student, task)
    if t_task not in PAIRS.get(task or t_task, ()):
        t, s_, wanted = with_article(t_task), with_article(task), with_article(" or ".join(PAIRS[task]))
        raise KDError(f"teacher '{path}' is {t} model but student '{student}' is {s_} model; {s_} student takes "
                      f"{wanted} teacher")  # fmt: skip
    head = model.model[-1]
    info = {
        "nc": head.nc,
        "names": model.names,
        "levels": head.nl,
        "reg_max": head.reg_max,
        "stride": head.stride.tolist(),
        "task": task or t_task,
        "teacher_task": t_task,
        "kpt_shape": list(getattr(head, "kpt_shape", ())) or None,
        "model": model,
    }
    n_student = _levels_of(student) if student else None
    if n_student is not None and n_student != head.nl:
        raise KDError(
            f"teacher has {head.nl} detection levels but student '{student}' has {n_student}; "
            "pick a teacher and student with the same strides (e.g. both P3-P5)"
        )
    return info
