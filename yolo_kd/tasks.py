"""One KD trainer per Ultralytics task: the shared mixin over the task's own trainer, and how to pick one.

Ultralytics' task trainers differ in their model, dataset and validator (``SegmentationTrainer`` is
``DetectionTrainer`` plus a few overrides); the KD hooks are the same for all of them (``KDTrainerMixin``). The
student's heads all extend ``Detect``, so feature methods and the box/class terms work on every task.
"""

from __future__ import annotations

from typing import Any

from ultralytics.models.yolo.obb import OBBTrainer
from ultralytics.models.yolo.pose import PoseTrainer
from ultralytics.models.yolo.segment import SegmentationTrainer

from yolo_kd.trainer import KDTrainer, KDTrainerMixin

# the task's own metric: Ultralytics' attribute on a val result and the suffix of its results.csv columns
# (mask mAP for seg, pose mAP for pose; box otherwise, as for obb and detect)
METRIC: dict[str, tuple[str, str]] = {"segment": ("seg", "M"), "pose": ("pose", "P")}
BOX_METRIC = ("box", "B")


class KDSegmentationTrainer(KDTrainerMixin, SegmentationTrainer):
    """Instance-segmentation student (``student=yolov8n-seg.yaml``) taught by a segment or detect teacher."""

    kd_task = "segment"


class KDPoseTrainer(KDTrainerMixin, PoseTrainer):
    """Pose student (``student=yolov8n-pose.yaml``) taught by a pose or detect teacher."""

    kd_task = "pose"


class KDOBBTrainer(KDTrainerMixin, OBBTrainer):
    """Oriented-box student (``student=yolov8n-obb.yaml``) taught by an obb teacher, with feature methods."""

    kd_task = "obb"


TRAINERS: dict[str, type[KDTrainerMixin]] = {
    "detect": KDTrainer,
    "segment": KDSegmentationTrainer,
    "pose": KDPoseTrainer,
    "obb": KDOBBTrainer,
}


def task_of(overrides: dict[str, Any]) -> str:
    """The task of the run ``overrides`` describe: the resumed checkpoint's, else the student's (detect by default)."""
    from yolo_kd.paths import resolve_weights
    from yolo_kd.teacher import check_student_task, student_task

    if overrides.get("resume"):
        from ultralytics.nn.tasks import torch_safe_load

        from yolo_kd.checkpoint.resume import resume_target

        path = resume_target(overrides.get("resume"), overrides.get("model") or overrides.get("student"))
        return (torch_safe_load(path)[0].get("train_args") or {}).get("task") or "detect"
    student = overrides.get("student") or overrides.get("model")
    task = student_task(resolve_weights(student, "student"), bool(overrides.get("safe_load"))) if student else None
    check_student_task(student, task)
    return task or "detect"


def trainer_for(overrides: dict[str, Any]) -> KDTrainerMixin:
    """The KD trainer of the student's task, built with ``overrides`` (what ``yolo-kd train`` runs)."""
    return TRAINERS[task_of(overrides)](overrides=overrides)


__all__ = [
    "BOX_METRIC",
    "METRIC",
    "TRAINERS",
    "KDOBBTrainer",
    "KDPoseTrainer",
    "KDSegmentationTrainer",
    "task_of",
    "trainer_for",
]
