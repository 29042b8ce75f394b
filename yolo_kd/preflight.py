"""Checks a KD trainer runs before its run folder exists: the student's task, its data, the teacher's fit to both.

Each raises one ``KDError`` line naming the problem and the fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from yolo_kd.errors import KDError, with_article

if TYPE_CHECKING:
    from yolo_kd.losses.registry import MethodSpec


def check_method_task(spec: MethodSpec, student_task: str | None, teacher_task: str | None) -> None:
    """Raise when a method of ``spec`` cannot distill this student/teacher pair.

    A task term (masks, keypoints) needs both of that task; a term on the axis-aligned box branch cannot take an obb
    student, whose head rotates it.
    """
    from yolo_kd.losses import LOSSES

    for k in spec.keys:
        need = LOSSES[k].task
        if need and (student_task != need or teacher_task != need):
            a_need = with_article(need)
            raise KDError(
                f"method '{k}' distills {need} outputs and needs {a_need} student and {a_need} teacher (here "
                f"{with_article(student_task)} student and {with_article(teacher_task)} teacher); drop '{k}' or pass "
                f"{a_need} teacher"
            )
    if student_task == "obb" and "box_branch" in spec.requires:
        flat = ", ".join(k for k, v in sorted(LOSSES.items()) if "box_branch" not in v.requires and not v.task)
        raise KDError(
            f"method '{spec.name}' works on the axis-aligned detection branch, which an obb head rotates; for obb "
            f"students pick one of {flat}"
        )


# the trainer of each task by name (tasks.TRAINERS holds the classes; a test keeps the two equal): preflight stays
# below the trainers in the import graph
TRAINER_NAMES = {
    "detect": "KDTrainer",
    "segment": "KDSegmentationTrainer",
    "pose": "KDPoseTrainer",
    "obb": "KDOBBTrainer",
}


def check_task(trainer_task: str, task: str, student: str, kd: dict[str, Any], teacher_task: str | None = None) -> None:
    """Raise when the student's ``task`` is not the trainer's, or a KD setting does not apply to it."""
    if task != trainer_task:
        raise KDError(
            f"student '{student}' is {with_article(task)} model; train it with {TRAINER_NAMES[task]} (yolo-kd train "
            "picks the trainer from the student)"
        )
    if kd.get("unlabeled"):
        check_unlabeled_teacher(task, teacher_task or task)
    check_method_task(kd["spec"], task, teacher_task or task)


def check_unlabeled_teacher(task: str, teacher_task: str) -> None:
    """Raise when the teacher cannot pseudo-label a ``task`` student's unlabeled images.

    A seg, pose or obb student needs a teacher of its task: its masks, keypoints or rotated boxes become the targets.
    """
    if task != "detect" and teacher_task != task:
        what = {"segment": "masks", "pose": "keypoints", "obb": "rotated boxes"}[task]
        raise KDError(
            f"unlabeled= for {with_article(task)} student needs {with_article(task)} teacher: its {what} become the "
            f"pseudo-labels ({with_article(teacher_task)} teacher has none); pass {with_article(task)} teacher or drop "
            "unlabeled="
        )


def check_task_data(task: str, data_yaml: str, teacher: dict[str, Any] | None) -> bool:
    """Raise when the dataset lacks what a ``task`` student learns from; True once its labels were all read.

    Polygons for segment, ``kpt_shape`` (the teacher's, for a pose teacher) and its keypoints for pose, four corners
    for obb, a teacher of the task for an ``unlabeled:`` pool. A dataset Ultralytics cannot read is left to the
    trainer's ``get_dataset`` (False).
    """
    from ultralytics.data.utils import check_det_dataset

    from yolo_kd.data.check import check_dataset

    try:
        data = check_det_dataset(data_yaml)
    except Exception:
        return False
    if task == "pose" and "kpt_shape" not in data:
        raise KDError(
            f"dataset '{data_yaml}' has no kpt_shape; a pose student needs a pose dataset (see "
            "https://docs.ultralytics.com/datasets/pose)"
        )
    check_keypoints(teacher, data)
    if data.get("unlabeled") and teacher:  # the data yaml's unlabeled: key, as unlabeled=
        check_unlabeled_teacher(task, teacher["teacher_task"])
    check_dataset(data, task=task)
    return True


def check_keypoints(teacher: dict[str, Any] | None, data: dict[str, Any]) -> None:
    """Raise when a pose teacher's keypoint layout is not the dataset's ``kpt_shape``."""
    kpt = teacher and teacher.get("kpt_shape")
    if kpt and data.get("kpt_shape") and list(kpt) != list(data["kpt_shape"]):
        raise KDError(
            f"teacher has keypoints {list(kpt)} but the dataset kpt_shape is {list(data['kpt_shape'])}; pass a pose "
            "teacher trained on this keypoint layout, or a detect teacher"
        )


def check_teacher_serves(teacher: dict[str, Any] | None, data: dict[str, Any], spec: MethodSpec) -> None:
    """Raise when the teacher's keypoints or classes cannot serve the data for the method ``spec``."""
    from yolo_kd.classmap import plan

    check_keypoints(teacher, data)
    if teacher and spec.needs_classes:  # the model applies the same plan when it is built
        names = data["names"] if isinstance(data["names"], dict) else dict(enumerate(data["names"]))
        try:  # a teacher with other classes is fine when names match: logits are mapped by name
            plan(teacher["names"], names, teacher["nc"], data["nc"], True, spec.name)
        except KDError as e:
            raise KDError(f"teacher has {teacher['nc']} classes but the dataset has {data['nc']} and {e}") from None
