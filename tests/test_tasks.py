"""Segment, pose and obb students: every method for one step on real labels, gradients to the student only."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import pytest
import torch

from yolo_kd.losses import LOSSES

SETS = {"segment": "coco8-seg", "pose": "coco8-pose", "obb": "dota8"}
CFG = {"detect": "yolov8n.yaml", "segment": "yolov8n-seg.yaml", "pose": "yolov8n-pose.yaml", "obb": "yolov8n-obb.yaml"}
FLAT = [k for k in sorted(LOSSES) if "box_branch" not in LOSSES[k].requires]  # what an obb student takes
ANY = [k for k in sorted(LOSSES) if not LOSSES[k].task]  # methods for every task (not masks or keypoints only)


@pytest.fixture(scope="module")
def task_data(shared_assets, tmp_path_factory) -> dict[str, Path]:
    """The three small real sets copied to a temp folder (Ultralytics writes label caches)."""
    root = tmp_path_factory.mktemp("tasks")
    out = {}
    for task, name in SETS.items():
        shutil.copytree(shared_assets / "datasets" / name, root / name)
        out[task] = root / name / "data.yaml"
    return out


def build(task: str, yaml: str, cfg: str) -> torch.nn.Module:
    """A random-weight model of ``task`` for the data ``yaml``, with the args Ultralytics' criteria read."""
    from ultralytics.cfg import get_cfg
    from ultralytics.data.utils import check_det_dataset
    from ultralytics.nn import tasks as t

    data = check_det_dataset(yaml)
    kind = {"detect": t.DetectionModel, "segment": t.SegmentationModel, "pose": t.PoseModel, "obb": t.OBBModel}[task]
    extra = {"data_kpt_shape": tuple(data["kpt_shape"])} if task == "pose" else {}
    torch.manual_seed(0)
    m = kind(cfg, nc=data["nc"], verbose=False, **extra)
    m.names, m.args = data["names"], get_cfg(overrides={"task": task, "imgsz": 64})
    return m


@functools.cache
def real_batch(task: str, yaml: Path) -> dict:
    """The data's train images at 64 px as one Ultralytics batch (masks, keypoints or angles included)."""
    from ultralytics.data.utils import check_det_dataset

    data = check_det_dataset(str(yaml))
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_yolo_dataset

    cfg = get_cfg(overrides={"task": task, "imgsz": 64, "mosaic": 0.0, "data": str(yaml)})
    ds = build_yolo_dataset(cfg, data["train"], batch=4, data=data, mode="val", stride=32)
    batch = ds.collate_fn([ds[i] for i in range(len(ds))])
    batch["img"] = batch["img"].float() / 255
    return batch


def one_step(task: str, teacher_task: str, method: str, task_data) -> None:
    """One KD step of ``method``: named finite terms whose gradient reaches the student and never the teacher."""
    from yolo_kd.model import KDModel

    yaml = task_data[task]
    s, t = build(task, str(yaml), CFG[task]), build(teacher_task, str(yaml), CFG[teacher_task])
    model = KDModel(t, s, method=method).train()
    det, items, terms, _ = model.kd_terms(
        {k: v.clone() if torch.is_tensor(v) else v for k, v in real_batch(task, yaml).items()}
    )
    assert tuple(terms) == model.kd_loss.names and all(torch.isfinite(v) for v in terms.values())
    assert set(model.kd_loss.names) <= set(model.kd_names)
    sum(terms.values()).backward()
    assert all(p.grad is None for p in model.teacher_model.parameters()), "a KD term reached the teacher"
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.student_model.parameters())


@pytest.mark.parametrize("method", ANY)
def test_every_method_steps_a_segment_student_from_a_detect_teacher(method, task_data):
    """Segment heads extend Detect: box/class and feature methods all serve a seg student."""
    one_step("segment", "detect", method, task_data)


@pytest.mark.parametrize("method", [*ANY, "kptkd"])
def test_every_method_steps_a_pose_student_from_a_pose_teacher(method, task_data):
    """Pose heads extend Detect: every method serves a pose student taught by a pose teacher."""
    one_step("pose", "pose", method, task_data)


@pytest.mark.parametrize("method", FLAT)
def test_every_flat_method_steps_an_obb_student(method, task_data):
    """Methods that do not read the axis-aligned box branch serve an obb student (rotated boxes masked by hull)."""
    one_step("obb", "obb", method, task_data)


PAIRS = [("segment", "segment", "crosskd"), ("pose", "detect", "crosskd"), ("segment", "segment", "maskkd"),
         ("segment", "segment", "crosskd+maskkd")]  # fmt: skip


@pytest.mark.parametrize("pair", PAIRS)
def test_the_other_teacher_kinds_and_the_mask_term(pair, task_data):
    """crosskd crosses into a seg teacher's head and into a detector's for a pose student; maskkd on a seg pair."""
    one_step(*pair, task_data)


def test_task_terms_need_their_task_on_both_sides(task_data):
    """maskkd with a detect teacher, kptkd with a seg student: one line naming the method and what it needs."""
    from yolo_kd.errors import KDError
    from yolo_kd.model import KDModel

    s, t = (
        build("segment", str(task_data["segment"]), CFG["segment"]),
        build("detect", str(task_data["segment"]), CFG["detect"]),
    )
    with pytest.raises(
        KDError, match="method 'maskkd' distills segment outputs and needs a segment student and a segment teacher"
    ):
        KDModel(t, s, method="maskkd")
    with pytest.raises(KDError, match="method 'kptkd' distills pose outputs"):
        KDModel(t, s, method="mimic+kptkd")


def test_obb_boxes_become_their_enclosing_boxes():
    """A w x h box turned by r is masked by its hull: extents w|cos r| + h|sin r| and w|sin r| + h|cos r|."""
    from yolo_kd.losses.base import batch_targets

    img = torch.zeros(1, 3, 100, 200)  # h 100, w 200: normalised w and h scale differently
    r = torch.tensor(0.5)
    batch = {"img": img, "batch_idx": torch.zeros(1), "cls": torch.ones(1, 1),
             "bboxes": torch.tensor([[0.5, 0.5, 0.1, 0.2, 0.5]])}  # fmt: skip
    w, h = 0.1 * 200, 0.2 * 100
    ex, ey = w * r.cos() + h * r.sin(), w * r.sin() + h * r.cos()
    want = torch.stack([100 - ex / 2, 50 - ey / 2, 100 + ex / 2, 50 + ey / 2])
    torch.testing.assert_close(batch_targets(batch)[2][0], want)


def test_trainers_are_the_mixin_over_each_ultralytics_task_trainer():
    """One KD trainer per task, each the shared mixin over Ultralytics' own task trainer."""
    from ultralytics.models.yolo import detect, obb, pose, segment

    from yolo_kd.tasks import TRAINERS
    from yolo_kd.trainer import KDTrainerMixin

    bases = {"detect": detect.DetectionTrainer, "segment": segment.SegmentationTrainer, "pose": pose.PoseTrainer,
             "obb": obb.OBBTrainer}  # fmt: skip
    for task, cls in TRAINERS.items():
        mro = cls.__mro__
        first_ultralytics = next(i for i, c in enumerate(mro) if c.__module__.startswith("ultralytics"))
        assert mro[1] is KDTrainerMixin and mro[first_ultralytics] is bases[task] and cls.kd_task == task
        assert all(c.__module__.startswith("yolo_kd") for c in mro[:first_ultralytics])  # our hooks come first
