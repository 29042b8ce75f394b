"""Shared fixtures: a tiny synthetic KITTI-style YOLO dataset and tiny teacher checkpoints built in the test."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("YOLO_OFFLINE", "1")
# ../shared/assets beside the checkout; YOLO_KD_ASSETS names another copy (e.g. one carried to a GPU machine)
SHARED = Path(os.environ.get("YOLO_KD_ASSETS") or Path(__file__).resolve().parents[1].parent / "shared" / "assets")


def save_checkpoint(path: Path, cfg: str = "yolov8s.yaml", nc: int = 3, seed: int = 0) -> Path:
    """Save a random-weight detector in Ultralytics' checkpoint layout."""
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(seed)
    m = DetectionModel(cfg, nc=nc, verbose=False)
    m.names = {i: f"class{i}" for i in range(nc)}
    torch.save({"model": m.half(), "train_args": {}, "version": "8.4.190"}, path)
    return path


# fixtures that train, export or build datasets
HEAVY = {"train_args", "tiny_data", "exported", "coco_ir", "coco_onnx", "coco_small", "task_data", "task_models"}


def pytest_collection_modifyitems(items) -> None:
    """Mark every test that uses a training, export or dataset fixture ``train``: ``-m "not slow and not train"`` is
    the fast inner loop (losses, statistics, parsing); the README's command still runs them all."""
    for item in items:
        if HEAVY & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.train)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """Synthetic KITTI scenes converted to YOLO (16 images, 3 classes); returns data.yaml."""
    from yolo_kd.data.kitti import convert_kitti
    from yolo_kd.data.synthetic import make_synthetic_kitti

    root = tmp_path_factory.mktemp("tiny")
    make_synthetic_kitti(root / "kitti", n=16, seed=0)
    return convert_kitti(root / "kitti", root / "yolo", val_fraction=0.25)


@pytest.fixture(scope="session")
def teacher_pt(tmp_path_factory) -> Path:
    """A random-weight yolov8s teacher with 3 classes."""
    return save_checkpoint(tmp_path_factory.mktemp("teacher") / "teacher.pt")


@pytest.fixture
def train_args(tiny_data, teacher_pt, tmp_path) -> dict:
    """Smallest KDTrainer overrides that still run a real epoch on CPU."""
    return {
        "teacher": str(teacher_pt),
        "student": "yolov8n.yaml",
        "data": str(tiny_data),
        "epochs": 1,
        "imgsz": 64,
        "batch": 4,
        "workers": 0,
        "device": "cpu",
        "plots": False,
        "project": str(tmp_path),
        "name": "run",
        "exist_ok": True,
        "seed": 0,
        "amp": False,
    }


@pytest.fixture(scope="session")
def shared_assets() -> Path:
    """The shared assets folder (real weights and datasets); the test is skipped, with the reason, when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"shared assets not found at {SHARED} (set YOLO_KD_ASSETS to a copy of ../shared/assets)")
    return SHARED


@pytest.fixture
def make_ckpt():
    """Factory: ``make_ckpt(path, cfg='yolov8s.yaml', nc=3)`` saves a random-weight detector checkpoint."""
    return save_checkpoint


EDGE_IMGSZ = 96


@pytest.fixture(scope="session")
def exported(tmp_path_factory, tiny_data):
    """A random-weight yolov8n (3 classes) exported to OpenVINO FP32 and ONNX, with their parity reports.

    The class-logit biases are raised from Ultralytics' prior (~1e-4 probability) so the model makes detections.
    """
    import torch
    from ultralytics.nn.tasks import DetectionModel

    from yolo_kd.tools.export import export

    root = tmp_path_factory.mktemp("export")
    torch.manual_seed(3)
    m = DetectionModel("yolov8n.yaml", nc=3, verbose=False)
    m.names = {0: "Car", 1: "Pedestrian", 2: "Cyclist"}
    for branch in m.model[-1].cv3:
        torch.nn.init.constant_(branch[-1].bias, -1.5)
    pt = root / "student.pt"
    torch.save({"model": m.half(), "train_args": {}, "version": "8.4.190"}, pt)
    ov = export(str(pt), format="openvino", imgsz=EDGE_IMGSZ, data=str(tiny_data), parity_images=4)
    onnx = export(str(pt), format="onnx", imgsz=EDGE_IMGSZ, data=str(tiny_data), parity_images=4, val=False)
    return {"pt": pt, "ov": ov, "onnx": onnx, "data": tiny_data}


def images_of(data: Path) -> list[Path]:
    """Val images of the tiny dataset."""
    return sorted((data.parent / "images" / "val").glob("*.png"))


def matched_boxes(ref, cls, conf, boxes, classes, scores, scale: float) -> int:
    """Assert every box in (ref, cls, conf) has one box of the same class in (boxes, ...) with IoU > 0.98, corners
    within ``scale`` px and score within 2e-3; return how many were checked."""
    if not len(ref):
        return 0
    assert len(boxes), "no detections where the reference has some"
    lt, rb = np.maximum(ref[:, None, :2], boxes[None, :, :2]), np.minimum(ref[:, None, 2:], boxes[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_r, area_b = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) for b in (ref, boxes))
    iou = inter / (area_r[:, None] + area_b[None] - inter)
    j = iou.argmax(1)
    assert len(set(j.tolist())) == len(ref) and iou.max(1).min() > 0.98  # one-to-one, the same boxes
    assert np.abs(boxes[j] - ref).max() <= scale and (classes[j] == cls).all()
    assert np.abs(scores[j] - conf).max() < 2e-3
    return len(ref)
