"""Synthetic task scenes (issue 35): Ultralytics reads every label, and each label means what the task needs."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from yolo_kd.data.synthetic import render_layers, render_scene
from yolo_kd.data.synthetic_tasks import FLIP, KPTS, make_synthetic_task


def test_seg_scenes_are_the_detection_scenes_with_disjoint_visible_masks():
    """Drawing on layers changes neither the image nor the rng stream, and nearer objects hide what they cover."""
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    for _ in range(12):
        img, lines = render_scene(a)
        img2, lines2, kept = render_layers(b, masks=True)
        assert hashlib.sha256(img.tobytes()).digest() == hashlib.sha256(img2.tobytes()).digest() and lines == lines2
        assert len(kept) == sum(not ln.startswith("DontCare") for ln in lines)
        stack = np.stack([m for _, m in kept]) if kept else np.zeros((1, 1, 1), bool)
        assert (stack.sum(0) <= 1).all()  # each pixel belongs to at most one visible object


@pytest.mark.parametrize("task", ["segment", "pose", "obb"])
def test_ultralytics_reads_every_label_of_each_task(tmp_path, task):
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    yaml_path = make_synthetic_task(tmp_path / task, task, n=24, val=8)
    data = check_det_dataset(str(yaml_path))
    ds = YOLODataset(img_path=data["train"], data=data, task=task, imgsz=160, augment=False)
    boxes = sum(len(lb["cls"]) for lb in ds.labels)
    written = sum(len(f.read_text().splitlines()) for f in (tmp_path / task / "labels" / "train").glob("*.txt"))
    assert len(ds.labels) == 16 and boxes == written > 0  # no image or label dropped as corrupt
    if task == "segment":
        assert all(len(lb["segments"]) == len(lb["cls"]) for lb in ds.labels)
    if task == "pose":
        assert data["kpt_shape"] == [5, 3] and data["flip_idx"] == FLIP
        kp = np.concatenate([lb["keypoints"] for lb in ds.labels])
        assert kp.shape[1:] == (len(KPTS), 3)


def rows(root, task: str, n: int) -> list[np.ndarray]:
    """Every label line (class dropped) of ``n`` train scenes of ``task`` written under ``root``."""
    make_synthetic_task(root, task, n=n, val=0)
    files = sorted((root / "labels" / "train").glob("*.txt"))
    return [np.array(ln.split()[1:], float) for f in files for ln in f.read_text().splitlines()]


def test_pose_left_is_left_so_the_flip_map_swaps_sides(tmp_path):
    """Unflipped, each figure's left hand/foot is left of its right one: a horizontal flip swaps them (flip_idx)."""
    kps = [r[4:].reshape(5, 3) for r in rows(tmp_path, "pose", 30)]
    pairs = [(k[a], k[b]) for k in kps for a, b in ((1, 2), (3, 4)) if k[a, 2] and k[b, 2]]
    assert len(pairs) > 40 and all(left[0] < right[0] for left, right in pairs)


def test_obb_labels_are_rectangles_inside_the_tile(tmp_path):
    corners = [r.reshape(4, 2) for r in rows(tmp_path, "obb", 20)]
    assert len(corners) > 30
    for c in corners:
        assert ((0 <= c) & (c <= 1)).all()
        e1, e2 = c[1] - c[0], c[3] - c[0]
        assert abs(np.dot(e1, e2)) < 1e-3 and np.allclose(c[0] + e1 + e2, c[2], atol=1e-4)  # right angle, closed
